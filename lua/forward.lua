-- forward: finish moving one member of a sealed partition once move_in.lua re-issued its notifications in
-- the new generation: each old record (and index entry, pending count, call) is removed and its old id
-- forwarded to its new one, so status and changes by the old id find it. Runs once per member: a replay (the
-- member is no longer in `moving`) does nothing.
-- KEYS[1] moving        ZSET   "<priority> <member>" -> due time: being moved
-- KEYS[2] state         HASH   id -> state JSON
-- KEYS[3] notifications HASH   id -> payload JSON
-- KEYS[4] by_recipient  ZSET   "<recipient> <id, 16 digits>" at score 0
-- KEYS[5] by_creator    ZSET   "<created_by> <id, 16 digits>" at score 0
-- KEYS[6] pending_by_creator HASH created_by -> their notifications pending or processing
-- KEYS[7] payload_refs  HASH   call id -> records still sharing the payload stored under it
-- KEYS[8] calls         HASH   call id -> "<due> <created> <count> <next> <offset> <priority> <created_by>"
-- KEYS[9] call_recipients HASH call id -> its recipients, space-separated
-- KEYS[10] call_starts  ZSET   call id -> call id
-- KEYS[11] call_pending STRING recipients still pending inside calls
-- KEYS[12] forward      HASH   old id -> new id
-- KEYS[13] counters     HASH   lifetime totals (moved_out)
-- ARGV[1] entry         the member in moving: "<priority> <id or -<call id>>"
-- ARGV[2] created_by    who scheduled them ('' for nobody)
-- ARGV[3..] old id, new id, recipient: one triple per notification moved
-- Returns: {notifications forwarded}
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {0} end
local member = string.match(ARGV[1], '^%S+ (%S+)$')
local creator = ARGV[2]
local cid = string.sub(member, 1, 1) == '-' and string.sub(member, 2) or nil
local moved = 0
for i = 3, #ARGV, 3 do
  local old, new, recipient = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local digits = string.format('%016d', tonumber(old))
  local holder = cid
  if not cid then
    local state = redis.call('HGET', KEYS[2], old)
    holder = state and string.match(state, '"call":(%d+)')
    redis.call('HDEL', KEYS[2], old)
    if not holder then redis.call('HDEL', KEYS[3], old) end
  end
  if holder and redis.call('HINCRBY', KEYS[7], holder, -1) <= 0 then  -- the last record sharing the payload
    redis.call('HDEL', KEYS[7], holder)
    redis.call('HDEL', KEYS[3], holder)
  end
  redis.call('ZREM', KEYS[4], recipient .. ' ' .. digits)
  if creator ~= '' then
    redis.call('ZREM', KEYS[5], creator .. ' ' .. digits)
    if redis.call('HINCRBY', KEYS[6], creator, -1) <= 0 then redis.call('HDEL', KEYS[6], creator) end
  end
  redis.call('HSET', KEYS[12], old, new)
  moved = moved + 1
end
if cid then  -- the call is gone from this partition: what it still held pending moved with it
  redis.call('HDEL', KEYS[8], cid)
  redis.call('HDEL', KEYS[9], cid)
  redis.call('ZREM', KEYS[10], cid)
  if moved > 0 then redis.call('DECRBY', KEYS[11], moved) end
end
redis.call('ZREM', KEYS[1], ARGV[1])
if moved > 0 then redis.call('HINCRBY', KEYS[13], 'moved_out', moved) end
return {moved}
