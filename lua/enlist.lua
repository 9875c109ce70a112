-- enlist: records that a worker is live (or leaving) and lists the live workers, so each can work out its
-- share of the partitions. Timed by the server's clock. Run twice, it records the same: no op key.
-- KEYS[1] owners     ZSET    worker id -> when it last enlisted, epoch ms; members older than lease_ms are gone
-- ARGV[1] now_ms     '' for the server's TIME, or a pinned clock
-- ARGV[2] worker     the worker enlisting
-- ARGV[3] lease_ms   how long an entry counts as live without another call
-- ARGV[4] leaving    '1': take the worker off (it stops cleanly), '' otherwise
-- Returns: {now_ms, worker...} the live workers' ids, sorted
-- include: clock.lua
local now = clock_ms(ARGV[1])
local lease = tonumber(ARGV[3])
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[2])
else
  redis.call('ZADD', KEYS[1], now, ARGV[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - lease))
redis.call('PEXPIRE', KEYS[1], math.max(lease * 3, 1))
local live = redis.call('ZRANGE', KEYS[1], now - lease, '+inf', 'BYSCORE')
table.sort(live)
local out = {now}
for _, id in ipairs(live) do
  out[#out + 1] = id
end
return out
