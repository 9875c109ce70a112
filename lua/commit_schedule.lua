-- commit_schedule: make a part staged by stage_schedule.lua visible: one pending notification per recipient,
-- as schedule.lua creates them, with the ids, due time and creation time the stage handed out. The caller
-- commits only after every partition of the call staged its part, so a refused call shows nothing.
-- KEYS[1] due           ZSET   normal id -> due time (epoch ms)
-- KEYS[2] notifications HASH   id -> payload JSON (opaque here)
-- KEYS[3] state         HASH   id -> state JSON
-- KEYS[4] by_recipient  ZSET   "<recipient> <id, 16 digits>" at score 0, read by name
-- KEYS[5] counters      HASH   lifetime totals
-- KEYS[6] idempotency   STRING remembered answer for the caller's idempotency key
-- KEYS[7] by_creator    ZSET   "<created_by> <id, 16 digits>" at score 0, read by name
-- KEYS[8] pending_by_creator HASH created_by -> notifications of theirs pending or processing
-- KEYS[9] staged        HASH   the part stage_schedule.lua set aside; deleted here
-- KEYS[10] due_urgent   ZSET   urgent id -> due time (epoch ms)
-- KEYS[11] due_high     ZSET   high id -> due time (epoch ms)
-- KEYS[12] due_low      ZSET   low id -> due time (epoch ms)
-- KEYS[13] op           STRING this call's outcome, so a retry of the same call answers it, not 'missing'
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] wakeup        channel told when the earliest due time moves earlier
-- ARGV[3] op_ttl_ms     how long the outcome is kept for retries of this call
-- Returns: {'created', due_ms, now_ms, id...} | {'replayed', due_ms, now_ms, id...} | {'missing'}
--          replayed: another try of the call committed it first; missing: the staged part expired
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
local function created(due, now, first, count, step)
  local reply = {'created', due, now}
  for i = 0, count - 1 do reply[#reply + 1] = first + i * step end
  return reply
end
local kept = redis.call('GET', KEYS[13])  -- a retry of a call that already ran (its reply was lost)
if kept then
  local k = kept_numbers(kept)
  return created(k[1], k[2], k[3], k[4], k[5])
end

local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local staged = redis.call('HGET', KEYS[9], 'call')
if not staged then
  local seen = redis.call('GET', KEYS[6])
  if not seen then return {'missing'} end
  local old = cjson.decode(seen)
  local reply = {'replayed', old.due, now}
  for _, id in ipairs(old.ids) do reply[#reply + 1] = id end
  return reply
end
local call = cjson.decode(staged)
local payload = redis.call('HGET', KEYS[9], 'payload')
local due, creator, count = call.due, call.creator, call.count
local dues = {urgent = KEYS[10], high = KEYS[11], low = KEYS[12]}
local due_key = dues[call.priority] or KEYS[1]
local earliest
for _, key in ipairs({KEYS[10], KEYS[11], KEYS[1], KEYS[12]}) do
  local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if head[2] and (earliest == nil or tonumber(head[2]) < earliest) then earliest = tonumber(head[2]) end
end

-- Written as schedule.lua writes: multi-member ZADD/HSET calls of up to 500 entries, state by concatenation.
local ids = {}
local state_head = '{"status":"pending","attempts":0,"scheduled_at":' .. string.format('%d', due)
  .. ',"created_at":' .. string.format('%d', call.created_at)
if creator ~= '' then state_head = state_head .. ',"created_by":' .. cjson.encode(creator) end
if due_key ~= KEYS[1] then state_head = state_head .. ',"priority":' .. cjson.encode(call.priority) end
state_head = state_head .. ',"recipient":'
local zdue, hpay, hstate, zrec, zcre = {}, {}, {}, {}, {}
local function flush()
  if #zdue == 0 then return end
  redis.call('ZADD', due_key, unpack(zdue))
  redis.call('HSET', KEYS[2], unpack(hpay))
  redis.call('HSET', KEYS[3], unpack(hstate))
  redis.call('ZADD', KEYS[4], unpack(zrec))
  if creator ~= '' then redis.call('ZADD', KEYS[7], unpack(zcre)) end
  zdue, hpay, hstate, zrec, zcre = {}, {}, {}, {}, {}
end
for i = 0, count - 1 do
  local id = (call.last - count + 1 + i) * call.partitions + call.partition
  local recipient = call.recipients[i + 1]
  ids[#ids + 1] = id
  local n = #zdue
  zdue[n + 1], zdue[n + 2] = due, id
  hpay[n + 1], hpay[n + 2] = id, payload
  hstate[n + 1], hstate[n + 2] = id, state_head .. cjson.encode(recipient) .. '}'
  zrec[n + 1], zrec[n + 2] = 0, recipient .. ' ' .. string.format('%016d', id)
  zcre[n + 1], zcre[n + 2] = 0, creator .. ' ' .. string.format('%016d', id)
  if n + 2 >= 1000 then flush() end
end
flush()
redis.call('HINCRBY', KEYS[5], 'scheduled', count)
if creator ~= '' then redis.call('HINCRBY', KEYS[8], creator, count) end
if earliest == nil or due < earliest then redis.call('PUBLISH', ARGV[2], due) end
if call.idem_ttl > 0 then
  redis.call('SET', KEYS[6], cjson.encode({fingerprint = call.fingerprint, due = due, ids = ids}), 'PX', call.idem_ttl)
end
redis.call('DEL', KEYS[9])
local first = (call.last - count + 1) * call.partitions + call.partition
keep(KEYS[13], ARGV[3], {due, now, first, count, call.partitions})
return created(due, now, first, count, call.partitions)
