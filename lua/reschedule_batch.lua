-- reschedule_batch: move every still-pending notification of one partition's part of a schedule call (its ids
-- are first + i * partitions, i < count) to one new due time, optionally only those a user created or receives.
-- A pending many-recipient call moves as a whole (its header and its one due entry) when the part is the whole
-- call and every recipient in it may be moved; otherwise each recipient moved leaves it with a record of its own,
-- as reschedule.lua does for one.
-- KEYS[1] due           ZSET  normal id -> due time (epoch ms)
-- KEYS[2] state         HASH  id -> state JSON
-- KEYS[3] due_urgent    ZSET  urgent id -> due time (epoch ms)
-- KEYS[4] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[5] due_low       ZSET  low id -> due time (epoch ms)
-- KEYS[6] calls         HASH  call id -> "<due> <created> <count> <next> <offset> <priority> <created_by>"
-- KEYS[7] call_recipients HASH call id -> its recipients, space-separated, in id order
-- KEYS[8] call_pending  STRING recipients still pending inside calls
-- KEYS[9] by_recipient  ZSET  "<recipient> <id, 16 digits>": one missing from it was purged
-- KEYS[10] op            STRING this call's outcome, so a retry of the same call answers it and moves nothing
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] first         the part's first id (a many-recipient call's id)
-- ARGV[3] count         how many ids the part has
-- ARGV[4] partitions    partition count: the part's ids are first + i * partitions
-- ARGV[5] at_ms         new due time, or '' to use delay_ms
-- ARGV[6] delay_ms      delay from now, used when at_ms is ''
-- ARGV[7] wakeup        channel told when the earliest due time moves earlier
-- ARGV[8] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[9] who           '' for every notification; else only those this user created or receives
-- Returns: {'rescheduled', due_ms, now_ms, rescheduled, not_pending, missing} | {'past', due_ms, now_ms}
--          not_pending: visible but no longer pending; missing: unknown, purged, or not visible to `who`
local kept = redis.call('GET', KEYS[10])  -- a retry of a call that already ran: "now" is not taken again
if kept then
  local k = {}
  for v in string.gmatch(kept, '%d+') do k[#k + 1] = tonumber(v) end
  return {'rescheduled', k[1], k[2], k[3], k[4], k[5]}
end

local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local due = tonumber(ARGV[5]) or (now + tonumber(ARGV[6]))
if due < now then return {'past', due, now} end
local first, count, step, who = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[9]
local function visible(creator, recipient) return who == '' or creator == who or recipient == who end

local function call_sliced(cmd, key, list, size)  -- one multi-key call per slice (unpack's stack limit)
  local out = {}
  for i = 1, #list, size do
    local part = redis.call(cmd, key, unpack(list, i, math.min(i + size - 1, #list)))
    if type(part) == 'table' then
      for j = 1, #part do out[#out + 1] = part[j] end
    end
  end
  return out
end

local earliest
for _, key in ipairs({KEYS[3], KEYS[4], KEYS[1], KEYS[5]}) do
  local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if head[2] and (earliest == nil or tonumber(head[2]) < earliest) then earliest = tonumber(head[2]) end
end

local ids = {}
for i = 0, count - 1 do ids[i + 1] = string.format('%d', first + i * step) end
local states = call_sliced('HMGET', KEYS[2], ids, 1000)

local call
local header = count > 1 and redis.call('HGET', KEYS[6], ids[1])
if header then
  local at, created, total, nxt, offset, priority, creator =
    string.match(header, '^(%d+) (%d+) (%d+) (%d+) (%d+) (%S+) ?(%S*)$')
  local people = {}
  local list = redis.call('HGET', KEYS[7], ids[1])
  for person in string.gmatch(string.sub(list, tonumber(offset)), '%S+') do people[#people + 1] = person end
  call = {at = at, created = created, total = tonumber(total), nxt = tonumber(nxt), offset = offset,
    priority = priority, creator = creator, people = people}
  -- The whole call moves at once when the part is all of it and the caller may move every recipient in it.
  call.whole = count >= call.total and (who == '' or creator == who)
end

-- Whether each recipient still inside the call is indexed (one purged alone is not), in one ZMSCORE per slice.
local indexed = {}
if call then
  local members, at = {}, {}
  for i = call.nxt + 1, math.min(call.total, count) do
    members[#members + 1] = call.people[i - call.nxt] .. ' ' .. string.format('%016d', tonumber(ids[i]))
    at[#at + 1] = i
  end
  for j, score in ipairs(call_sliced('ZMSCORE', KEYS[9], members, 1000)) do indexed[at[j]] = score end
end

local dues = {urgent = KEYS[3], high = KEYS[4], low = KEYS[5]}  -- no priority in the state: normal
local text_due = string.format('%d', due)
local moved, not_pending, missing, out_of_call = 0, 0, 0, 0
local hset = {}
for i, id in ipairs(ids) do
  local raw = states[i]
  if raw then
    local st = cjson.decode(raw)
    if not visible(st.created_by, st.recipient) then
      missing = missing + 1
    elseif st.status ~= 'pending' then
      not_pending = not_pending + 1
    else
      st.scheduled_at = due
      hset[#hset + 1], hset[#hset + 2] = id, cjson.encode(st)
      redis.call('ZADD', dues[st.priority] or KEYS[1], due, id)
      moved = moved + 1
    end
  elseif call and i - 1 >= call.nxt and i - 1 < call.total then
    local person = call.people[i - call.nxt]
    if not indexed[i] then
      missing = missing + 1
    elseif call.whole then
      moved = moved + 1  -- it moves with its call, below
    elseif not visible(call.creator, person) then
      missing = missing + 1
    else  -- out of its call, due alone, as reschedule.lua takes one out
      local state = '{"status":"pending","attempts":0,"recipient":' .. cjson.encode(person) .. ',"scheduled_at":'
        .. text_due .. ',"created_at":' .. call.created .. ',"call":' .. ids[1]
      if call.creator ~= '' then state = state .. ',"created_by":' .. cjson.encode(call.creator) end
      if call.priority ~= 'normal' then state = state .. ',"priority":"' .. call.priority .. '"' end
      hset[#hset + 1], hset[#hset + 2] = id, state .. '}'
      redis.call('ZADD', dues[call.priority] or KEYS[1], due, id)
      out_of_call = out_of_call + 1
      moved = moved + 1
    end
  else
    missing = missing + 1
  end
end
if #hset > 0 then call_sliced('HSET', KEYS[2], hset, 1000) end
if out_of_call > 0 then redis.call('DECRBY', KEYS[8], out_of_call) end
if call and call.whole then
  redis.call('HSET', KEYS[6], ids[1], text_due .. ' ' .. call.created .. ' ' .. call.total .. ' ' .. call.nxt .. ' '
    .. call.offset .. ' ' .. call.priority .. ' ' .. call.creator)
  redis.call('ZADD', dues[call.priority] or KEYS[1], due, '-' .. ids[1])
end
if moved > 0 and (earliest == nil or due < earliest) then redis.call('PUBLISH', ARGV[7], due) end
redis.call('SET', KEYS[10], string.format('%d %d %d %d %d', due, now, moved, not_pending, missing), 'PX', ARGV[8])
return {'rescheduled', due, now, moved, not_pending, missing}
