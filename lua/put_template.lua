-- put_template: save a template's next version; the versions before it stay as they were, so a notification
-- scheduled with one of them renders the same when it is sent. A resent call (its reply was lost) answers
-- with the first run's version instead of saving another.
-- KEYS[1] names         HASH  template name -> its latest version
-- KEYS[2] versions      HASH  version -> that version's JSON (this template's)
-- KEYS[3] op            STRING this call's outcome, so a retry of the same call answers it again
-- KEYS[4] counters      HASH  template name -> the last version number given (kept after a delete, so a
--                       number is never given twice)
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] name          the template's name
-- ARGV[3] body          the version's JSON object (fallback_locale, variants), created_at is added here
-- ARGV[4] op_ttl_ms     how long the outcome is kept for retries of this call
-- Returns: {version, created_at (epoch ms)}
-- include: clock.lua
local kept = redis.call('GET', KEYS[3])
if kept then
  local sep = string.find(kept, ',', 1, true)
  return {tonumber(string.sub(kept, 1, sep - 1)), tonumber(string.sub(kept, sep + 1))}
end
local now = clock_ms(ARGV[1])
local version = redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
redis.call('HSET', KEYS[1], ARGV[2], version)
local stamp = string.format('%d', now)
redis.call('HSET', KEYS[2], version, '{"created_at":' .. stamp .. ',' .. string.sub(ARGV[3], 2))
redis.call('SET', KEYS[3], version .. ',' .. stamp, 'PX', ARGV[4])
return {version, now}
