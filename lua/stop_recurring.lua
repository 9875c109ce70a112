-- stop_recurring: pause or delete a recurring schedule, so no worker creates another occurrence of it.
-- Pause keeps the definition and the state (status 'paused'); delete removes both and the creator's index entry.
-- Either takes the schedule out of recurring_due in the same step, so an advance that read it before finds it
-- paused or gone and creates nothing. The occurrence already created is left to the caller, who cancels it while
-- it is pending (its ids follow from the state's first id). Pausing a paused or finished schedule changes nothing
-- and answers the same, so a resent call is harmless; a resent delete answers 'missing'.
-- KEYS[1] recurring            HASH schedule id -> definition JSON
-- KEYS[2] recurring_state      HASH schedule id -> "<status> <next_ms> <count> <first_id>"
-- KEYS[3] recurring_due        ZSET active schedule id -> time of its pending occurrence
-- KEYS[4] recurring_by_creator ZSET "<created_by> <schedule id, 16 digits>" at score 0
-- ARGV[1] schedule_id
-- ARGV[2] move                 pause or delete
-- ARGV[3] created_by           the schedule's owner ('' for nobody), to drop its index entry on delete
-- Returns: {'paused', state} | {'deleted', state} | {'missing'}
local current = redis.call('HGET', KEYS[2], ARGV[1])
if not current then return {'missing'} end
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[2] == 'delete' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  if ARGV[3] ~= '' then
    redis.call('ZREM', KEYS[4], ARGV[3] .. ' ' .. string.format('%016d', tonumber(ARGV[1])))
  end
  return {'deleted', current}
end
local status, rest = string.match(current, '^(%a+) (.*)$')
if status == 'active' then
  current = 'paused ' .. rest
  redis.call('HSET', KEYS[2], ARGV[1], current)
end
return {'paused', current}
