-- delete_template: delete every version of a template, unless something may still use it. The caller first
-- finds which uses are over (their notifications left pending, or were purged) and names them here; they are
-- removed, lapsed reservations too, and what is left refuses the delete. A use added since the caller looked
-- is therefore never deleted past. A resent call (its reply was lost) answers with the first run's outcome.
-- KEYS[1] names         HASH  template name -> its latest version
-- KEYS[2] versions      HASH  version -> that version's JSON (this template's)
-- KEYS[3] uses          ZSET  what may still use the template -> its due time, or when a reservation lapses
-- KEYS[4] op            STRING this call's outcome, so a retry of the same call answers it again
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] name          the template's name
-- ARGV[3] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[4..] over        uses whose notifications are no longer pending
-- Returns: {1, versions deleted}, {0, uses left} when still in use, or {-1, 0} when there is no such template
-- include: clock.lua
local kept = redis.call('GET', KEYS[4])
if kept then
  local sep = string.find(kept, ',', 1, true)
  return {tonumber(string.sub(kept, 1, sep - 1)), tonumber(string.sub(kept, sep + 1))}
end
local now = clock_ms(ARGV[1])
local outcome
if not redis.call('HGET', KEYS[1], ARGV[2]) then
  outcome = {-1, 0}
else
  for i = 4, #ARGV, 500 do redis.call('ZREM', KEYS[3], unpack(ARGV, i, math.min(i + 499, #ARGV))) end
  for _, member in ipairs(redis.call('ZRANGE', KEYS[3], 1, now, 'BYSCORE')) do  -- uses are scored by due time,
    if string.sub(member, 1, 2) == 'r:' then redis.call('ZREM', KEYS[3], member) end  -- reservations by lapse time
  end
  local left = redis.call('ZCARD', KEYS[3])
  if left > 0 then
    outcome = {0, left}
  else
    local versions = redis.call('HLEN', KEYS[2])
    redis.call('DEL', KEYS[2], KEYS[3])
    redis.call('HDEL', KEYS[1], ARGV[2])
    outcome = {1, versions}
  end
end
redis.call('SET', KEYS[4], outcome[1] .. ',' .. outcome[2], 'PX', ARGV[3])
return outcome
