-- claim: move up to `limit` due notifications into processing under a lease, counting the attempt.
-- KEYS[1] due           ZSET  id -> due time (epoch ms)
-- KEYS[2] processing    ZSET  id -> lease deadline (epoch ms)
-- KEYS[3] notifications HASH  id -> payload JSON
-- KEYS[4] state         HASH  id -> state JSON
-- KEYS[5] counters      HASH  lifetime totals
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] limit         most notifications to claim
-- ARGV[3] lease_ms      how long the claimer owns them before reap hands them to another worker
-- Returns: {now_ms, wait_ms, id, state JSON, payload JSON, ...}
--          wait_ms: time until the next due notification after this claim, -1 when none is pending
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local deadline = now + tonumber(ARGV[3])
local ids = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local reply = {now, -1}
local claimed = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local raw = redis.call('HGET', KEYS[4], id)
  if raw then
    local st = cjson.decode(raw)
    st.status = 'processing'
    st.attempts = st.attempts + 1
    st.lease_until = deadline
    raw = cjson.encode(st)
    redis.call('HSET', KEYS[4], id, raw)
    redis.call('ZADD', KEYS[2], deadline, id)
    reply[#reply + 1] = id
    reply[#reply + 1] = raw
    reply[#reply + 1] = redis.call('HGET', KEYS[3], id) or '{}'
    claimed = claimed + 1
  end
end
if claimed > 0 then redis.call('HINCRBY', KEYS[5], 'claimed', claimed) end

local next_due = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if next_due[2] then reply[2] = math.max(0, tonumber(next_due[2]) - now) end
return reply
