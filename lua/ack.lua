-- ack: mark delivered notifications sent and schedule their records for removal.
-- A notification whose lease expired and was handed back to due is still marked sent here:
-- it was delivered, and marking it stops a second delivery.
-- KEYS[1] due           ZSET  id -> due time (epoch ms)
-- KEYS[2] processing    ZSET  id -> lease deadline (epoch ms)
-- KEYS[3] state         HASH  id -> state JSON
-- KEYS[4] sent          ZSET  id -> time its record is purged (epoch ms)
-- KEYS[5] counters      HASH  lifetime totals
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] keep_ms       how long a sent record is kept
-- ARGV[3..] ids         notifications delivered
-- Returns: {now_ms, acked count}
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local purge_at = now + tonumber(ARGV[2])
local acked = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local raw = redis.call('HGET', KEYS[3], id)
  if raw then
    local st = cjson.decode(raw)
    if st.status == 'processing' or st.status == 'pending' then
      st.status = 'sent'
      st.sent_at = now
      st.lease_until = nil
      redis.call('HSET', KEYS[3], id, cjson.encode(st))
      redis.call('ZREM', KEYS[2], id)
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZADD', KEYS[4], purge_at, id)
      acked = acked + 1
    end
  end
end
if acked > 0 then redis.call('HINCRBY', KEYS[5], 'sent', acked) end
return {now, acked}
