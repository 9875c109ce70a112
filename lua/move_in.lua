-- move_in: re-issue notifications moved out of a sealed partition (move_out.lua) in a partition of the new
-- generation, each under a new id, with its due time, payload, priority, creator, attempts and the rest of
-- its state kept, as a pending record of its own (a moved call's recipients each get one). Idempotent by the
-- old id: one already moved here answers with the id it was given, so a re-run of an interrupted reshard
-- creates nothing twice.
-- KEYS[1] due           ZSET   normal id -> due time (epoch ms)
-- KEYS[2] due_urgent    ZSET   urgent id -> due time
-- KEYS[3] due_high      ZSET   high id -> due time
-- KEYS[4] due_low       ZSET   low id -> due time
-- KEYS[5] notifications HASH   id -> payload JSON
-- KEYS[6] state         HASH   id -> state JSON
-- KEYS[7] by_recipient  ZSET   "<recipient> <id, 16 digits>" at score 0
-- KEYS[8] by_creator    ZSET   "<created_by> <id, 16 digits>" at score 0
-- KEYS[9] pending_by_creator HASH created_by -> their notifications pending or processing
-- KEYS[10] counters     HASH   lifetime totals (moved_in)
-- KEYS[11] sequence     STRING last sequence number handed out in this partition
-- KEYS[12] moved_from   HASH   old id -> the new id it was given here
-- KEYS[13] collapse     HASH   "<recipient> <collapse key>" -> newest id scheduled with them
-- ARGV[1] partitions    the new generation's count: id = sequence * partitions + partition
-- ARGV[2] partition     this partition's index
-- ARGV[3] wakeup        channel told the earliest due time moved here
-- ARGV[4] payload       payload JSON shared by the notifications of this call
-- ARGV[5..] old id, due ms, state JSON: one triple per notification
-- Returns: {new id...} in the order of the triples
local partitions, partition = tonumber(ARGV[1]), tonumber(ARGV[2])
local DUES = {normal = KEYS[1], urgent = KEYS[2], high = KEYS[3], low = KEYS[4]}
local payload = ARGV[4]
local collapse_key = false
if string.find(payload, '"collapse_key":', 1, true) then collapse_key = cjson.decode(payload).collapse_key end
local reply, created, earliest = {}, 0, nil
for i = 5, #ARGV, 3 do
  local old, due, state = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local known = redis.call('HGET', KEYS[12], old)
  if known then
    reply[#reply + 1] = tonumber(known)
  else
    local id = redis.call('INCR', KEYS[11]) * partitions + partition
    local sid, digits = string.format('%d', id), string.format('%016d', id)
    local st = cjson.decode(state)
    if st.call then  -- the record keeps its state as it was, under its own id now: no call holds its payload here
      st.call = nil
      state = cjson.encode(st)
    end
    redis.call('HSET', KEYS[6], sid, state)
    redis.call('HSET', KEYS[5], sid, payload)
    redis.call('ZADD', DUES[st.priority or 'normal'], due, sid)
    redis.call('ZADD', KEYS[7], 0, st.recipient .. ' ' .. digits)
    if st.created_by and st.created_by ~= '' then
      redis.call('ZADD', KEYS[8], 0, st.created_by .. ' ' .. digits)
      redis.call('HINCRBY', KEYS[9], st.created_by, 1)
    end
    if collapse_key then redis.call('HSETNX', KEYS[13], st.recipient .. ' ' .. collapse_key, sid) end
    redis.call('HSET', KEYS[12], old, sid)
    if not earliest or due < earliest then earliest = due end
    created = created + 1
    reply[#reply + 1] = id
  end
end
if created > 0 then
  redis.call('HINCRBY', KEYS[10], 'moved_in', created)
  redis.call('PUBLISH', ARGV[3], earliest)
end
return reply
