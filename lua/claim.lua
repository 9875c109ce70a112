-- claim: move up to `limit` due notifications into processing under a lease, counting the attempt.
-- Higher priorities go first: every due urgent one, then high, normal, low; within one, the earliest due.
-- A due "-<call id>" member is a many-recipient call: its next recipients get records of their own here
-- (built by concatenation, no JSON decoded), skipping any that a cancel or reschedule already gave one; the
-- call leaves due once its last recipient is claimed.
-- KEYS[1] due           ZSET  normal id -> due time (epoch ms)
-- KEYS[2] processing    ZSET  id -> lease deadline (epoch ms)
-- KEYS[3] notifications HASH  id -> payload JSON
-- KEYS[4] state         HASH  id -> state JSON
-- KEYS[5] counters      HASH  lifetime totals
-- KEYS[6] due_urgent    ZSET  urgent id -> due time (epoch ms)
-- KEYS[7] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[8] due_low       ZSET  low id -> due time (epoch ms)
-- KEYS[9] calls        HASH  call id -> "<due> <created> <count> <next> <offset> <priority> <created_by>"
-- KEYS[10] call_recipients HASH call id -> its recipients, space-separated, in id order
-- KEYS[11] call_starts  ZSET  call id -> call id
-- KEYS[12] call_pending STRING recipients still pending inside calls
-- KEYS[13] by_recipient ZSET  "<recipient> <id, 16 digits>": a recipient purged from it was cancelled or
--                       rescheduled alone and its record purged, so its call must not hand it out again
-- KEYS[14] op            STRING this call's outcome (the ids it claimed), so a retry of the same call gets
--                       the same batch instead of claiming another and stranding the first
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] limit         most notifications to claim
-- ARGV[3] lease_ms      how long the claimer owns them before reap hands them to another worker
-- ARGV[4] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[5] partitions    partition count: a call's recipients have ids call id + i * partitions
-- Returns: {now_ms, wait_us, id, state JSON, payload JSON, ...}
--          wait_us: microseconds until the next due notification after this claim, -1 when none is pending
--          (finer than the ms scores, so a worker can wake within a fraction of a millisecond of due)
local function keep(key, ttl_ms, numbers)  -- a call's outcome: its numbers in decimal (exact: cjson keeps 14 digits)
  local text = {}
  for i, v in ipairs(numbers) do text[i] = string.format('%d', v) end
  redis.call('SET', key, table.concat(text, ','), 'PX', ttl_ms)
end
local function kept_numbers(text)
  local numbers = {}
  for v in string.gmatch(text, '[^,]+') do numbers[#numbers + 1] = tonumber(v) end
  return numbers
end
local payloads_of = {}  -- call id -> its payload, read once per claim
local function payload_of(holder)
  local payload = payloads_of[holder]
  if payload == nil then
    payload = redis.call('HGET', KEYS[3], holder) or '{}'
    payloads_of[holder] = payload
  end
  return payload
end
local function stored_payload(id, raw)  -- a record's payload: under its call's id when it names one
  return payload_of(raw and string.match(raw, '"call":(%d+)') or id)
end

local kept = redis.call('GET', KEYS[14])
if kept then  -- a retry of a call that already ran (its reply was lost): the same batch, read again
  local k = kept_numbers(kept)
  local reply = {k[1], k[2]}
  for i = 3, #k do
    local id = string.format('%d', k[i])
    local raw = redis.call('HGET', KEYS[4], id)
    reply[#reply + 1] = k[i]
    reply[#reply + 1] = raw or '{}'
    reply[#reply + 1] = stored_payload(id, raw)
  end
  return reply
end

local now_us = tonumber(ARGV[1])
if now_us then
  now_us = now_us * 1000
else
  local t = redis.call('TIME')
  now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local now = math.floor(now_us / 1000)

local deadline = now + tonumber(ARGV[3])
local partitions = tonumber(ARGV[5])
-- Reads and writes go out as one multi-key call per command (sliced, for unpack's stack limit) rather than
-- six calls per notification: per-call overhead was most of this script's cost.
local function call_sliced(cmd, key, list, step)
  local out = {}
  for i = 1, #list, step do
    local part = redis.call(cmd, key, unpack(list, i, math.min(i + step - 1, #list)))
    if type(part) == 'table' then
      for j = 1, #part do out[#out + 1] = part[j] end
    end
  end
  return out
end

local reply = {now, -1}
local claimed = 0
local hset, zadd = {}, {}
local function take(id, raw, payload)
  hset[#hset + 1], hset[#hset + 2] = id, raw
  zadd[#zadd + 1], zadd[#zadd + 2] = deadline, id
  reply[#reply + 1], reply[#reply + 2], reply[#reply + 3] = id, raw, payload
  claimed = claimed + 1
end

-- Claim up to `room` of the next recipients of the call under `member` in `due`, passing over any that a
-- cancel or reschedule already gave a record of their own; returns how many it claimed.
local function claim_from_call(due, member, room)
  local cid = string.sub(member, 2)
  local header = redis.call('HGET', KEYS[9], cid)
  if not header then  -- a call with nothing left to claim (never expected): drop its due entry
    redis.call('ZREM', due, member)
    return 0
  end
  local at, created, count, nxt, offset, priority, creator =
    string.match(header, '^(%d+) (%d+) (%d+) (%d+) (%d+) (%S+) ?(%S*)$')
  count, nxt, offset = tonumber(count), tonumber(nxt), tonumber(offset)
  local list = redis.call('HGET', KEYS[10], cid)
  local head = '{"status":"processing","attempts":1,"lease_until":' .. string.format('%d', deadline)
    .. ',"recipient":'
  local tail = ',"scheduled_at":' .. at .. ',"created_at":' .. created .. ',"call":' .. cid
  if creator ~= '' then tail = tail .. ',"created_by":' .. cjson.encode(creator) end
  if priority ~= 'normal' then tail = tail .. ',"priority":"' .. priority .. '"' end
  tail = tail .. '}'
  local payload = payload_of(cid)
  local before = claimed
  while claimed - before < room and nxt < count do
    local n = math.min(room - (claimed - before), count - nxt)
    local ids, people = {}, {}
    for j = 1, n do
      local space = string.find(list, ' ', offset, true)
      people[j] = string.sub(list, offset, space and space - 1 or -1)
      offset = space and space + 1 or #list + 1
      ids[j] = string.format('%d', tonumber(cid) + (nxt + j - 1) * partitions)
    end
    local own = call_sliced('HMGET', KEYS[4], ids, 1000)
    local members = {}
    for j, id in ipairs(ids) do members[j] = people[j] .. ' ' .. string.format('%016d', tonumber(id)) end
    local indexed = call_sliced('ZMSCORE', KEYS[13], members, 1000)
    for j, id in ipairs(ids) do
      if not own[j] and indexed[j] then take(id, head .. cjson.encode(people[j]) .. tail, payload) end
    end
    nxt = nxt + n
  end
  if nxt >= count then
    redis.call('ZREM', due, member)
    redis.call('HDEL', KEYS[9], cid)
    redis.call('HDEL', KEYS[10], cid)
    redis.call('ZREM', KEYS[11], cid)
  else
    redis.call('HSET', KEYS[9], cid,
      at .. ' ' .. created .. ' ' .. count .. ' ' .. nxt .. ' ' .. offset .. ' ' .. priority .. ' ' .. creator)
  end
  if claimed > before then redis.call('DECRBY', KEYS[12], claimed - before) end
  return claimed - before
end

-- Notifications with records of their own (single-recipient ones, and retries and reschedules of any).
local function claim_records(ids)
  local states = call_sliced('HMGET', KEYS[4], ids, 1000)
  for i, id in ipairs(ids) do
    local raw = states[i]
    local ok, st = false, nil
    if raw then ok, st = pcall(cjson.decode, raw) end
    if raw and not (ok and type(st) == 'table') then
      -- A state Lua cannot read is held under the lease as it is, for the worker to fail with its reason;
      -- raising here would fail the whole claim, and every claim after it, over one corrupt record.
      zadd[#zadd + 1], zadd[#zadd + 2] = deadline, id
      reply[#reply + 1], reply[#reply + 2], reply[#reply + 3] = id, raw, stored_payload(id, raw)
      claimed = claimed + 1
    elseif raw then
      st.status = 'processing'
      st.attempts = (tonumber(st.attempts) or 0) + 1
      st.lease_until = deadline
      local payload = st.call and payload_of(string.format('%d', st.call)) or payload_of(id)
      take(id, cjson.encode(st), payload)
    end
  end
end

local dues = {KEYS[6], KEYS[7], KEYS[1], KEYS[8]}  -- the order priorities are claimed in
local limit = tonumber(ARGV[2])
local used = 0
-- Each fetch takes what it found out of due (a call once its last recipient is claimed), so fetching again
-- until the limit is reached or nothing is due always moves on.
for _, due in ipairs(dues) do
  while used < limit do
    local got = redis.call('ZRANGE', due, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit - used)
    if #got == 0 then break end
    local ids = {}
    for _, member in ipairs(got) do
      if used >= limit then break end
      if string.sub(member, 1, 1) == '-' then
        used = used + claim_from_call(due, member, limit - used)
      else
        ids[#ids + 1] = member
        used = used + 1
      end
    end
    if #ids > 0 then
      call_sliced('ZREM', due, ids, 1000)
      claim_records(ids)
    end
  end
end
if #hset > 0 then call_sliced('HSET', KEYS[4], hset, 1000) end
if #zadd > 0 then call_sliced('ZADD', KEYS[2], zadd, 1000) end
if claimed > 0 then redis.call('HINCRBY', KEYS[5], 'claimed', claimed) end

local next_due
for _, due in ipairs(dues) do
  local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
  if first[2] and (next_due == nil or tonumber(first[2]) < next_due) then next_due = tonumber(first[2]) end
end
if next_due then reply[2] = math.max(0, next_due * 1000 - now_us) end
if claimed > 0 then
  local outcome = {reply[1], reply[2]}
  for i = 3, #reply, 3 do outcome[#outcome + 1] = tonumber(reply[i]) end
  keep(KEYS[14], ARGV[4], outcome)
end
return reply
