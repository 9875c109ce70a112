-- edit: give a pending notification new content (its payload, made by the caller from the one it read).
-- The payload is replaced only if it is still the one the caller read (else 'stale': read again and retry), so
-- two edits never lose one another's changes. One sharing its call's payload (a recipient still inside the
-- call, or one with a record of its own naming the call) gets a payload of its own instead, under a fresh holder
-- id from the partition's sequence (its own id may be the call's, which holds the call's payload): the others
-- keep theirs. A recipient still inside its call leaves it, due alone at the call's time, as reschedule.lua
-- takes one out.
-- KEYS[1] due           ZSET  normal id -> due time (epoch ms)
-- KEYS[2] notifications HASH  id -> payload JSON (a call's under the call id)
-- KEYS[3] state         HASH  id -> state JSON
-- KEYS[4] due_urgent    ZSET  urgent id -> due time (epoch ms)
-- KEYS[5] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[6] due_low       ZSET  low id -> due time (epoch ms)
-- KEYS[7] calls         HASH  call id -> "<due> <created> <count> <next> <offset> <priority> <created_by>"
-- KEYS[8] call_recipients HASH call id -> its recipients, space-separated, in id order
-- KEYS[9] call_starts   ZSET  call id -> call id
-- KEYS[10] call_pending  STRING recipients still pending inside calls
-- KEYS[11] by_recipient  ZSET  "<recipient> <id, 16 digits>": one missing from it was purged
-- KEYS[12] payload_refs  HASH  call id -> records still sharing the payload stored under it
-- KEYS[13] sequence      STRING the last sequence number handed out (a fresh holder id is one more)
-- KEYS[14] op            STRING this call's outcome, so a retry of the same call answers it again
-- KEYS[15] moving        ZSET  "<priority> <due member>": what a reshard is moving (refused: 'moving')
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] id            the notification
-- ARGV[3] read          the payload JSON the caller read (and made the new one from)
-- ARGV[4] payload       the new payload JSON
-- ARGV[5] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[6] partitions    partition count: a call's recipients have ids call id + i * partitions
-- Returns: {'edited', now_ms} | {'missing'} | {'not_pending', current status} | {'stale'} | {'moving'}
-- include: calls.lua
-- include: clock.lua
local kept = redis.call('GET', KEYS[14])  -- a retry of a call that already ran (its reply was lost)
if kept then return {'edited', tonumber(kept)} end

local now = clock_ms(ARGV[1])
local id = ARGV[2]

local CALL_KEYS = {call_starts = KEYS[9], calls = KEYS[7], call_recipients = KEYS[8], by_recipient = KEYS[11]}
local function in_call() return pending_in_call(id, CALL_KEYS, tonumber(ARGV[6])) end
local function unshare(cid)  -- one record less shares the call's payload; the last takes the payload with it
  if redis.call('HINCRBY', KEYS[12], cid, -1) <= 0 then
    redis.call('HDEL', KEYS[12], cid)
    redis.call('HDEL', KEYS[2], cid)
  end
end
local function fresh_holder()  -- an id no notification has, to hold one payload (shared by nobody else)
  local partitions = tonumber(ARGV[6])
  local holder = string.format('%d', redis.call('INCR', KEYS[13]) * partitions + tonumber(id) % partitions)
  redis.call('HSET', KEYS[12], holder, 1)
  return holder
end
local holder = id  -- where the new payload goes

local raw = redis.call('HGET', KEYS[3], id)
if raw then
  local st = cjson.decode(raw)
  if st.status ~= 'pending' then return {'not_pending', st.status} end
  if redis.call('ZSCORE', KEYS[15], (st.priority or 'normal') .. ' ' .. id) then return {'moving'} end
  local shared = st.call and string.format('%d', st.call) or id
  if redis.call('HGET', KEYS[2], shared) ~= ARGV[3] then return {'stale'} end
  if st.call then  -- a payload it shares (its call's, or one edit_batch set aside): it gets one of its own
    holder = fresh_holder()
    st.call = tonumber(holder)
    redis.call('HSET', KEYS[3], id, cjson.encode(st))
    unshare(shared)
  end
else
  local call = in_call()
  if not call then return {'missing'} end
  if redis.call('ZSCORE', KEYS[15], call.priority .. ' -' .. call.cid) then return {'moving'} end
  if redis.call('HGET', KEYS[2], call.cid) ~= ARGV[3] then return {'stale'} end
  holder = fresh_holder()
  local state = '{"status":"pending","attempts":0,"recipient":' .. cjson.encode(call.recipient)
    .. ',"scheduled_at":' .. call.at .. ',"created_at":' .. call.created .. ',"call":' .. holder
  if call.creator ~= '' then state = state .. ',"created_by":' .. cjson.encode(call.creator) end
  if call.priority ~= 'normal' then state = state .. ',"priority":"' .. call.priority .. '"' end
  redis.call('HSET', KEYS[3], id, state .. '}')
  local dues = {urgent = KEYS[4], high = KEYS[5], low = KEYS[6]}
  redis.call('ZADD', dues[call.priority] or KEYS[1], tonumber(call.at), id)
  redis.call('DECRBY', KEYS[10], 1)
  unshare(call.cid)
end
redis.call('HSET', KEYS[2], holder, ARGV[4])
redis.call('SET', KEYS[14], string.format('%d', now), 'PX', ARGV[5])
return {'edited', now}
