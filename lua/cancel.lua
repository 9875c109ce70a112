-- cancel: cancel a notification that is still pending.
-- One still pending inside a many-recipient call gets a record of its own, cancelled; claim.lua skips it.
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
-- KEYS[15] moving        ZSET  "<priority> <due member>": what a reshard is moving (refused: 'moving')
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] keep_ms       how long a cancelled record is kept
-- ARGV[3] id            the notification
-- ARGV[4] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[5] partitions    partition count: a call's recipients have ids call id + i * partitions
-- Returns: {'cancelled', now_ms} | {'missing'} | {'not_pending', current status} | {'moving'}
-- include: calls.lua
-- include: clock.lua
local kept = redis.call('GET', KEYS[14])  -- a retry of a call that already ran (its reply was lost)
if kept then
  local reply = {'cancelled', tonumber(kept)}
  return reply
end

local now = clock_ms(ARGV[1])

local CALL_KEYS = {call_starts = KEYS[11], calls = KEYS[9], call_recipients = KEYS[10], by_recipient = KEYS[13]}
local function in_call(id) return pending_in_call(id, CALL_KEYS, tonumber(ARGV[5])) end
local function release(creator)  -- it leaves pending: one less held by its creator
  if creator and redis.call('HINCRBY', KEYS[5], creator, -1) <= 0 then redis.call('HDEL', KEYS[5], creator) end
end

local raw = redis.call('HGET', KEYS[2], ARGV[3])
if not raw then
  local call = in_call(ARGV[3])
  if not call then return {'missing'} end
  if redis.call('ZSCORE', KEYS[15], call.priority .. ' -' .. call.cid) then return {'moving'} end
  local record = own_record(call, call.recipient, 'cancelled', call.at, ',"cancelled_at":' .. string.format('%d', now))
  redis.call('HSET', KEYS[2], ARGV[3], record)
  redis.call('DECRBY', KEYS[12], 1)
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('HINCRBY', KEYS[4], 'cancelled', 1)
  release(call.creator ~= '' and call.creator or nil)
  redis.call('SET', KEYS[14], string.format('%d', now), 'PX', ARGV[4])
  return {'cancelled', now}
end
local st = cjson.decode(raw)
if st.status ~= 'pending' then return {'not_pending', st.status} end
if redis.call('ZSCORE', KEYS[15], (st.priority or 'normal') .. ' ' .. ARGV[3]) then return {'moving'} end
st.status = 'cancelled'
st.cancelled_at = now
redis.call('HSET', KEYS[2], ARGV[3], cjson.encode(st))
local dues = {urgent = KEYS[6], high = KEYS[7], low = KEYS[8]}  -- no priority in the state: normal
redis.call('ZREM', dues[st.priority] or KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[3])
redis.call('HINCRBY', KEYS[4], 'cancelled', 1)
release(st.created_by)
redis.call('SET', KEYS[14], string.format('%d', now), 'PX', ARGV[4])
return {'cancelled', now}
