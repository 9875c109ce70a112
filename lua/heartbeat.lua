-- heartbeat: records that a process (worker or gateway) is alive and what it is doing, timed by the server's
-- clock so every process is judged on one clock. Run twice, it records the same with a later time: no op key.
-- KEYS[1] processes  ZSET    process id -> when its last heartbeat arrived, epoch ms
-- KEYS[2] process    STRING  the process's description (JSON, opaque here); expires after keep_ms
-- ARGV[1] now_ms     '' for the server's TIME, or a pinned clock
-- ARGV[2] id         the process's id (its member in processes)
-- ARGV[3] info       its description
-- ARGV[4] keep_ms    how long a description outlives its last heartbeat; older members are dropped
-- Returns: {now_ms}
-- include: clock.lua
local now = clock_ms(ARGV[1])
local keep = tonumber(ARGV[4])
redis.call('SET', KEYS[2], ARGV[3], 'PX', keep)
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - keep))
redis.call('PEXPIRE', KEYS[1], keep)
return {now}
