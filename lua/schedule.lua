-- schedule: create pending notifications for recipients, all due at one time, in one partition.
-- One recipient: its own record (state and payload under its id), in due under its id.
-- Several: one pending call. The payload is stored once under the call id (the first recipient's id; the
-- others follow as id + i * partitions), the recipients once as a space-separated list, and the call sits
-- in due once, as "-<call id>". Each recipient costs only its by_recipient (and by_creator) entry until
-- claim.lua gives it a record of its own; cancel.lua and reschedule.lua do so earlier, for that one alone.
-- KEYS[1] due           ZSET   normal id -> due time (epoch ms)
-- KEYS[2] notifications HASH   id -> payload JSON (opaque here)
-- KEYS[3] state         HASH   id -> state JSON
-- KEYS[4] by_recipient  ZSET   "<recipient> <id, 16 digits>" at score 0, read by name
-- KEYS[5] counters      HASH   lifetime totals
-- KEYS[6] sequence      STRING last sequence number handed out in this partition
-- KEYS[7] idempotency   STRING remembered answer for the caller's idempotency key
-- KEYS[8] by_creator    ZSET   "<created_by> <id, 16 digits>" at score 0, read by name
-- KEYS[9] pending_by_creator HASH created_by -> notifications of theirs pending or processing
-- KEYS[10] due_urgent   ZSET   urgent id -> due time (epoch ms)
-- KEYS[11] due_high     ZSET   high id -> due time (epoch ms)
-- KEYS[12] due_low      ZSET   low id -> due time (epoch ms)
-- KEYS[13] calls        HASH   call id -> "<due> <created> <count> <next> <offset> <priority> <created_by>"
--                       while some of its recipients are still pending in it
-- KEYS[14] call_recipients HASH call id -> its recipients, space-separated, in id order
-- KEYS[15] call_starts  ZSET   call id -> call id, to find a recipient's pending call from its id
-- KEYS[16] call_pending STRING recipients still pending inside calls (for the pending count)
-- KEYS[17] payload_refs HASH   call id -> records still using its payload (the payload goes with the last)
-- KEYS[18] op           STRING this call's outcome, so a retry of the same call answers it and creates nothing
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] at_ms         due time, or '' to use delay_ms
-- ARGV[3] delay_ms      delay from now, used when at_ms is ''
-- ARGV[4] partitions    partition count: id = sequence * partitions + partition
-- ARGV[5] partition     this partition's index
-- ARGV[6] idem_ttl_ms   how long to remember the answer; 0 when the call has no idempotency key
-- ARGV[7] fingerprint   digest of the request the idempotency key stands for
-- ARGV[8] wakeup        channel told when the earliest due time moves earlier
-- ARGV[9] payload       payload JSON shared by every recipient
-- ARGV[10] created_by   who scheduled it ('' for nobody): indexed in by_creator, kept in the state
-- ARGV[11] max_pending  most a creator may hold pending across partitions; 0: no cap checked here
-- ARGV[12] others       what the creator holds in the other partitions (read by the caller)
-- ARGV[13] priority     urgent, high, normal or low: picks the due set, kept in the state (unless normal)
-- ARGV[14] op_ttl_ms    how long the outcome is kept for retries of this call
-- ARGV[15..] recipients
-- Returns: {'created', due_ms, now_ms, id...} | {'replayed', due_ms, now_ms, id...}
--        | {'past', due_ms, now_ms} | {'conflict'} | {'over_quota', held, max_pending}
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
local partitions, partition = tonumber(ARGV[4]), tonumber(ARGV[5])
local function created(due, now, last, count)
  local reply = {'created', due, now}
  for i = 0, count - 1 do reply[#reply + 1] = (last - count + 1 + i) * partitions + partition end
  return reply
end
-- A retry of a call that already ran (its reply was lost) gets the first answer; only the numbers the ids
-- are made of are kept, not the ids.
local kept = redis.call('GET', KEYS[18])
if kept then
  local k = kept_numbers(kept)
  return created(k[1], k[2], k[3], k[4])
end

local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local idem_ttl = tonumber(ARGV[6])
if idem_ttl > 0 then
  local seen = redis.call('GET', KEYS[7])
  if seen then
    local old = cjson.decode(seen)
    if old.fingerprint ~= ARGV[7] then return {'conflict'} end
    local reply = {'replayed', old.due, now}
    for _, id in ipairs(old.ids) do reply[#reply + 1] = id end
    return reply
  end
end

local due = tonumber(ARGV[2]) or (now + tonumber(ARGV[3]))
if due < now then return {'past', due, now} end

local first = 15
local count = #ARGV - first + 1
local creator = ARGV[10]
local max_pending = tonumber(ARGV[11])
if creator ~= '' and max_pending > 0 then
  local held = tonumber(redis.call('HGET', KEYS[9], creator) or '0') + tonumber(ARGV[12])
  if held + count > max_pending then return {'over_quota', held, max_pending} end
end
local last = redis.call('INCRBY', KEYS[6], count)
local dues = {urgent = KEYS[10], high = KEYS[11], normal = KEYS[1], low = KEYS[12]}
local due_key = dues[ARGV[13]] or KEYS[1]
local earliest
for _, key in ipairs({KEYS[10], KEYS[11], KEYS[1], KEYS[12]}) do
  local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if head[2] and (earliest == nil or tonumber(head[2]) < earliest) then earliest = tonumber(head[2]) end
end

-- Entries go out in multi-member ZADD/HSET calls of up to 500 per call: one redis.call per recipient per key
-- was most of this script's cost for many-recipient calls. The state JSON is built by concatenation, since
-- only the recipient differs between recipients (cjson.encode quotes and escapes it).
local ids = {}
local payload = ARGV[9]
local first_id = (last - count + 1) * partitions + partition
local zrec, zcre = {}, {}
local function flush_index()
  if #zrec == 0 then return end
  redis.call('ZADD', KEYS[4], unpack(zrec))
  if creator ~= '' then redis.call('ZADD', KEYS[8], unpack(zcre)) end
  zrec, zcre = {}, {}
end
for i = 0, count - 1 do
  local id = first_id + i * partitions
  ids[#ids + 1] = id
  local n = #zrec
  zrec[n + 1], zrec[n + 2] = 0, ARGV[first + i] .. ' ' .. string.format('%016d', id)
  zcre[n + 1], zcre[n + 2] = 0, creator .. ' ' .. string.format('%016d', id)
  if n + 2 >= 1000 then flush_index() end
end
flush_index()
if count == 1 then
  local state = '{"status":"pending","attempts":0,"scheduled_at":' .. string.format('%d', due)
    .. ',"created_at":' .. string.format('%d', now)
  if creator ~= '' then state = state .. ',"created_by":' .. cjson.encode(creator) end
  if due_key ~= KEYS[1] then state = state .. ',"priority":' .. cjson.encode(ARGV[13]) end
  state = state .. ',"recipient":' .. cjson.encode(ARGV[first]) .. '}'
  local id = string.format('%d', first_id)
  redis.call('ZADD', due_key, due, id)
  redis.call('HSET', KEYS[2], id, payload)
  redis.call('HSET', KEYS[3], id, state)
else
  local cid = string.format('%d', first_id)
  redis.call('ZADD', due_key, due, '-' .. cid)
  redis.call('HSET', KEYS[2], cid, payload)
  redis.call('HSET', KEYS[13], cid, string.format('%d %d %d 0 1 %s %s', due, now, count, ARGV[13], creator))
  redis.call('HSET', KEYS[14], cid, table.concat(ARGV, ' ', first, #ARGV))
  redis.call('ZADD', KEYS[15], cid, cid)
  redis.call('INCRBY', KEYS[16], count)
  redis.call('HSET', KEYS[17], cid, count)
end
redis.call('HINCRBY', KEYS[5], 'scheduled', count)
if creator ~= '' then redis.call('HINCRBY', KEYS[9], creator, count) end

if earliest == nil or due < earliest then
  redis.call('PUBLISH', ARGV[8], due)
end
if idem_ttl > 0 then
  redis.call('SET', KEYS[7], cjson.encode({fingerprint = ARGV[7], due = due, ids = ids}), 'PX', idem_ttl)
end
keep(KEYS[18], ARGV[14], {due, now, last, count})
return created(due, now, last, count)
