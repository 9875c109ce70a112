-- own: takes or renews one partition's owner lease for a worker, so one worker at a time claims from it.
-- Run twice, it gives the same outcome (the lease is ours, pushed a lease past now again): no op key needed.
-- KEYS[1] owner      STRING  the owning worker's id; expires lease_ms after its last take or renewal
-- ARGV[1] worker     the worker asking
-- ARGV[2] lease_ms   how long the lease holds from now without a renewal
-- Returns: {held, ttl_ms} held 1 when the lease is now the worker's (taken or renewed); 0 when another
--   worker holds it, for ttl_ms more
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {0, redis.call('PTTL', KEYS[1])}
end
local lease = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', lease)
return {1, lease}
