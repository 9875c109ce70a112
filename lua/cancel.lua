-- cancel: cancel a notification that is still pending.
-- KEYS[1] due           ZSET  normal id -> due time (epoch ms)
-- KEYS[2] state         HASH  id -> state JSON
-- KEYS[3] cancelled     ZSET  id -> time its record is purged (epoch ms)
-- KEYS[4] counters      HASH  lifetime totals
-- KEYS[5] pending_by_creator HASH  created_by -> notifications of theirs pending or processing
-- KEYS[6] due_urgent    ZSET  urgent id -> due time (epoch ms)
-- KEYS[7] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[8] due_low       ZSET  low id -> due time (epoch ms)
-- KEYS[9] op            STRING this call's outcome, so a retry of the same call answers it again
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] keep_ms       how long a cancelled record is kept
-- ARGV[3] id            the notification
-- ARGV[4] op_ttl_ms     how long the outcome is kept for retries of this call
-- Returns: {'cancelled', now_ms} | {'missing'} | {'not_pending', current status}
local kept = redis.call('GET', KEYS[9])  -- a retry of a call that already ran (its reply was lost)
if kept then
  local reply = {'cancelled', tonumber(kept)}
  return reply
end

local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local raw = redis.call('HGET', KEYS[2], ARGV[3])
if not raw then return {'missing'} end
local st = cjson.decode(raw)
if st.status ~= 'pending' then return {'not_pending', st.status} end
st.status = 'cancelled'
st.cancelled_at = now
redis.call('HSET', KEYS[2], ARGV[3], cjson.encode(st))
local dues = {urgent = KEYS[6], high = KEYS[7], low = KEYS[8]}  -- no priority in the state: normal
redis.call('ZREM', dues[st.priority] or KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[3])
redis.call('HINCRBY', KEYS[4], 'cancelled', 1)
if st.created_by and redis.call('HINCRBY', KEYS[5], st.created_by, -1) <= 0 then
  redis.call('HDEL', KEYS[5], st.created_by)
end
redis.call('SET', KEYS[9], string.format('%d', now), 'PX', ARGV[4])
return {'cancelled', now}
