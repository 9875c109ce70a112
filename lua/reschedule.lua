-- reschedule: move a pending notification to a new due time.
-- One still pending inside a many-recipient call gets a record of its own, due alone; claim.lua skips it there.
-- KEYS[1] due           ZSET  normal id -> due time (epoch ms)
-- KEYS[2] state         HASH  id -> state JSON
-- KEYS[3] due_urgent    ZSET  urgent id -> due time (epoch ms)
-- KEYS[4] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[5] due_low       ZSET  low id -> due time (epoch ms)
-- KEYS[6] calls         HASH  call id -> "<due> <created> <count> <next> <offset> <priority> <created_by>"
-- KEYS[7] call_recipients HASH call id -> its recipients, space-separated, in id order
-- KEYS[8] call_starts   ZSET  call id -> call id
-- KEYS[9] call_pending  STRING recipients still pending inside calls
-- KEYS[10] by_recipient  ZSET  "<recipient> <id, 16 digits>": one missing from it was purged
-- KEYS[11] op            STRING this call's outcome, so a retry of the same call answers it and moves nothing
-- KEYS[12] moving        ZSET  "<priority> <due member>": what a reshard is moving (refused: 'moving')
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] id            the notification
-- ARGV[3] at_ms         new due time, or '' to use delay_ms
-- ARGV[4] delay_ms      delay from now, used when at_ms is ''
-- ARGV[5] wakeup        channel told when the earliest due time moves earlier
-- ARGV[6] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[7] partitions    partition count: a call's recipients have ids call id + i * partitions
-- Returns: {'rescheduled', due_ms, now_ms} | {'past', due_ms, now_ms} | {'missing'} | {'not_pending', status}
--        | {'moving'}
-- include: calls.lua
-- include: clock.lua
-- include: outcome.lua
local kept = redis.call('GET', KEYS[11])  -- a retry of a call that already ran: "now" is not taken again
if kept then
  local k = kept_numbers(kept)
  local reply = {'rescheduled', k[1], k[2]}
  return reply
end

local now = clock_ms(ARGV[1])

local CALL_KEYS = {call_starts = KEYS[8], calls = KEYS[6], call_recipients = KEYS[7], by_recipient = KEYS[10]}
local function in_call(id) return pending_in_call(id, CALL_KEYS, tonumber(ARGV[7])) end
local due = tonumber(ARGV[3]) or (now + tonumber(ARGV[4]))
local raw = redis.call('HGET', KEYS[2], ARGV[2])
local st, call
if raw then
  st = cjson.decode(raw)
  if st.status ~= 'pending' then return {'not_pending', st.status} end
  if redis.call('ZSCORE', KEYS[12], (st.priority or 'normal') .. ' ' .. ARGV[2]) then return {'moving'} end
else
  call = in_call(ARGV[2])
  if not call then return {'missing'} end
  if redis.call('ZSCORE', KEYS[12], call.priority .. ' -' .. call.cid) then return {'moving'} end
  st = {priority = call.priority}
end
if due < now then return {'past', due, now} end

local earliest
for _, key in ipairs({KEYS[3], KEYS[4], KEYS[1], KEYS[5]}) do
  local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if head[2] and (earliest == nil or tonumber(head[2]) < earliest) then earliest = tonumber(head[2]) end
end
local dues = {urgent = KEYS[3], high = KEYS[4], low = KEYS[5]}  -- no priority in the state: normal
if call then
  redis.call('HSET', KEYS[2], ARGV[2], own_record(call, call.recipient, 'pending', string.format('%d', due), ''))
  redis.call('DECRBY', KEYS[9], 1)
else
  st.scheduled_at = due
  redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(st))
end
redis.call('ZADD', dues[st.priority] or KEYS[1], due, ARGV[2])
if earliest == nil or due < earliest then redis.call('PUBLISH', ARGV[5], due) end
keep(KEYS[11], ARGV[6], {due, now})
return {'rescheduled', due, now}
