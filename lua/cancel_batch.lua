-- cancel_batch: cancel every still-pending notification of one partition's part of a schedule call (its ids are
-- first + i * partitions, i < count), optionally only those a user created or receives.
-- A pending many-recipient call whose every recipient still inside it is cancelled here leaves due at once (no
-- claim has to pass over it); those recipients get cancelled records of their own, built without decoding JSON.
-- KEYS[1] due           ZSET  normal id -> due time (epoch ms)
-- KEYS[2] state         HASH  id -> state JSON
-- KEYS[3] cancelled     ZSET  id -> time its record is purged (epoch ms)
-- KEYS[4] counters      HASH  lifetime totals
-- KEYS[5] pending_by_creator HASH  created_by -> notifications of theirs pending or processing
-- KEYS[6] due_urgent    ZSET  urgent id -> due time (epoch ms)
-- KEYS[7] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[8] due_low       ZSET  low id -> due time (epoch ms)
-- KEYS[9] calls         HASH  call id -> "<due> <created> <count> <next> <offset> <priority> <created_by>"
-- KEYS[10] call_recipients HASH call id -> its recipients, space-separated, in id order
-- KEYS[11] call_starts   ZSET  call id -> call id
-- KEYS[12] call_pending  STRING recipients still pending inside calls
-- KEYS[13] by_recipient  ZSET  "<recipient> <id, 16 digits>": one missing from it was purged
-- KEYS[14] op            STRING this call's outcome, so a retry of the same call answers it again
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] keep_ms       how long a cancelled record is kept
-- ARGV[3] first         the part's first id (a many-recipient call's id)
-- ARGV[4] count         how many ids the part has
-- ARGV[5] partitions    partition count: the part's ids are first + i * partitions
-- ARGV[6] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[7] who           '' for every notification; else only those this user created or receives
-- Returns: {'cancelled', now_ms, cancelled, not_pending, missing}
--          not_pending: visible but no longer pending; missing: unknown, purged, or not visible to `who`
-- include: clock.lua
-- include: calls.lua
-- include: sliced.lua
-- include: part.lua
local kept = redis.call('GET', KEYS[14])  -- a retry of a call that already ran (its reply was lost)
if kept then
  local k = {}
  for v in string.gmatch(kept, '%d+') do k[#k + 1] = tonumber(v) end
  return {'cancelled', k[1], k[2], k[3], k[4]}
end

local now = clock_ms(ARGV[1])
local first, count, step, who = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[7]
local function visible(creator, recipient) return who == '' or creator == who or recipient == who end

local ids, states, call, indexed =
  read_part(first, count, step, {state = KEYS[2], calls = KEYS[9], call_recipients = KEYS[10], by_recipient = KEYS[13]})

local dues = {urgent = KEYS[6], high = KEYS[7], low = KEYS[8]}  -- no priority in the state: normal
local cancelled, not_pending, missing, left_in_call = 0, 0, 0, 0
local hset, zadd, released, from_call = {}, {}, {}, 0
local purge_at = now + tonumber(ARGV[2])
local stamp = string.format('%d', now)
local function cancel(id, state, creator)
  hset[#hset + 1], hset[#hset + 2] = id, state
  zadd[#zadd + 1], zadd[#zadd + 2] = purge_at, id
  if creator and creator ~= '' then released[creator] = (released[creator] or 0) + 1 end
  cancelled = cancelled + 1
end
for i, id in ipairs(ids) do
  local raw = states[i]
  if raw then
    local st = cjson.decode(raw)
    if not visible(st.created_by, st.recipient) then
      missing = missing + 1
    elseif st.status ~= 'pending' then
      not_pending = not_pending + 1
    else
      st.status, st.cancelled_at = 'cancelled', now
      redis.call('ZREM', dues[st.priority] or KEYS[1], id)
      cancel(id, cjson.encode(st), st.created_by)
    end
  elseif call and i - 1 >= call.nxt and i - 1 < call.total then
    local person = call.people[i - call.nxt]
    if not indexed[i] then
      missing = missing + 1
    elseif not visible(call.creator, person) then
      missing = missing + 1
      left_in_call = left_in_call + 1
    else
      cancel(id, own_record(call, person, 'cancelled', call.at, ',"cancelled_at":' .. stamp), call.creator)
      from_call = from_call + 1
    end
  else
    missing = missing + 1
  end
end
if #hset > 0 then call_sliced('HSET', KEYS[2], hset, 1000) end
if #zadd > 0 then call_sliced('ZADD', KEYS[3], zadd, 1000) end
if from_call > 0 then redis.call('DECRBY', KEYS[12], from_call) end
if call and left_in_call == 0 and count >= call.total then  -- nobody is left waiting in it: it leaves due now
  redis.call('ZREM', dues[call.priority] or KEYS[1], '-' .. ids[1])
  redis.call('HDEL', KEYS[9], ids[1])
  redis.call('HDEL', KEYS[10], ids[1])
  redis.call('ZREM', KEYS[11], ids[1])
end
if cancelled > 0 then redis.call('HINCRBY', KEYS[4], 'cancelled', cancelled) end
for creator, n in pairs(released) do  -- they leave pending: no longer held by their creator
  if redis.call('HINCRBY', KEYS[5], creator, -n) <= 0 then redis.call('HDEL', KEYS[5], creator) end
end
redis.call('SET', KEYS[14], string.format('%d %d %d %d', now, cancelled, not_pending, missing), 'PX', ARGV[6])
return {'cancelled', now, cancelled, not_pending, missing}
