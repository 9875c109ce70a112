-- add_minute: adds one process's delivery counts (since its last call) to a minute's bucket, which every worker
-- adds to, for the dashboard's charts; the bucket expires keep_ms after it was last added to. A resend of the
-- same call (its reply was lost) adds nothing: its op key says it already ran.
-- KEYS[1] bucket     HASH    field -> count for one minute: sent, retry, failed, and le:<ms> lateness counts
-- KEYS[2] op         STRING  this call's op key, kept op_ttl_ms once it ran
-- ARGV[1] keep_ms    how long the bucket lives
-- ARGV[2] op_ttl_ms  how long the op key answers a resend
-- ARGV[3..] counts   field, count, field, count, ...
-- Returns: {added}, 1 when added, 0 when this call had already run
if redis.call('EXISTS', KEYS[2]) == 1 then return {0} end
for i = 3, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], 1, 'PX', ARGV[2])
return {1}
