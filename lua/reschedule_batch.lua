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
-- include: clock.lua
-- include: calls.lua
-- include: sliced.lua
-- include: part.lua
local kept = redis.call('GET', KEYS[10])  -- a retry of a call that already ran: "now" is not taken again
if kept then
  local k = {}
  for v in string.gmatch(kept, '%d+') do k[#k + 1] = tonumber(v) end
  return {'rescheduled', k[1], k[2], k[3], k[4], k[5]}
end

local now = clock_ms(ARGV[1])
local due = tonumber(ARGV[5]) or (now + tonumber(ARGV[6]))
if due < now then return {'past', due, now} end
local first, count, step, who = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[9]
local function visible(creator, recipient) return who == '' or creator == who or recipient == who end

local earliest
for _, key in ipairs({KEYS[3], KEYS[4], KEYS[1], KEYS[5]}) do
  local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if head[2] and (earliest == nil or tonumber(head[2]) < earliest) then earliest = tonumber(head[2]) end
end

local ids, states, call, indexed =
  read_part(first, count, step, {state = KEYS[2], calls = KEYS[6], call_recipients = KEYS[7], by_recipient = KEYS[9]})
-- The whole call moves at once when the part is all of it and the caller may move every recipient in it.
if call then call.whole = count >= call.total and (who == '' or call.creator == who) end


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
      hset[#hset + 1], hset[#hset + 2] = id, own_record(call, person, 'pending', text_due, '')
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
