-- seal: close a partition of the old generation to new notifications, for a reshard into generation
-- ARGV[1]: schedule calls here are refused with 'moved' from now on, so its sequences stop growing. The
-- same call run twice has the same outcome.
-- KEYS[1] sealed        STRING the generation this partition was resharded into
-- KEYS[2] sequence      STRING last notification sequence number handed out here
-- KEYS[3] recurring_sequence STRING last recurring schedule sequence number handed out here
-- KEYS[4] recurring     HASH   recurring schedule id -> its record (counted: the reshard refuses to move them)
-- ARGV[1] generation    the new generation's number
-- Returns: {generation sealed into, last sequence, last recurring sequence, recurring schedules here}
--          sealed into another generation than ARGV[1] when an earlier reshard sealed it
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return {
  tonumber(redis.call('GET', KEYS[1])),
  tonumber(redis.call('GET', KEYS[2]) or '0'),
  tonumber(redis.call('GET', KEYS[3]) or '0'),
  redis.call('HLEN', KEYS[4]),
}
