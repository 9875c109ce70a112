-- stop_recurring: pause or delete a recurring schedule, so no worker creates another occurrence of it.
-- Pause keeps the record (status 'paused'); delete removes it and the creator's index entry.
-- Either takes the schedule out of recurring_due in the same step, so an advance that read it before finds it
-- paused or gone and creates nothing. The occurrence already created is left to the caller, who cancels it while
-- it is pending (its ids follow from the state's first id). Pausing a paused or finished schedule changes nothing
-- and answers the same, so a resent call is harmless; a resent delete answers 'missing'.
-- KEYS[1] recurring            HASH schedule id -> "<status> <next_ms> <count> <first_id> <definition>\n<payload>"
-- KEYS[2] recurring_due        ZSET active schedule id -> time of its pending occurrence
-- KEYS[3] recurring_by_creator ZSET "<created_by> <schedule id, 16 digits>" at score 0
-- ARGV[1] schedule_id
-- ARGV[2] move                 pause or delete
-- ARGV[3] created_by           the schedule's owner ('' for nobody), to drop its index entry on delete
-- Returns: {'paused', state} | {'deleted', state} | {'missing'}  (state: "<status> <next_ms> <count> <first_id>")
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return {'missing'} end
redis.call('ZREM', KEYS[2], ARGV[1])
local state = string.match(current, '^%a+ %d+ %d+ %d+') or 'finished 0 0 0'
if ARGV[2] == 'delete' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  if ARGV[3] ~= '' then
    redis.call('ZREM', KEYS[3], ARGV[3] .. ' ' .. string.format('%016d', tonumber(ARGV[1])))
  end
  return {'deleted', state}
end
if string.sub(state, 1, 7) == 'active ' then
  state = 'paused ' .. string.sub(state, 8)
  redis.call('HSET', KEYS[1], ARGV[1], 'paused ' .. string.sub(current, 8))
end
return {'paused', state}
