-- reschedule: move a pending notification to a new due time.
-- KEYS[1] due           ZSET  normal id -> due time (epoch ms)
-- KEYS[2] state         HASH  id -> state JSON
-- KEYS[3] due_urgent    ZSET  urgent id -> due time (epoch ms)
-- KEYS[4] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[5] due_low       ZSET  low id -> due time (epoch ms)
-- KEYS[6] op            STRING this call's outcome, so a retry of the same call answers it and moves nothing
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] id            the notification
-- ARGV[3] at_ms         new due time, or '' to use delay_ms
-- ARGV[4] delay_ms      delay from now, used when at_ms is ''
-- ARGV[5] wakeup        channel told when the earliest due time moves earlier
-- ARGV[6] op_ttl_ms     how long the outcome is kept for retries of this call
-- Returns: {'rescheduled', due_ms, now_ms} | {'past', due_ms, now_ms} | {'missing'} | {'not_pending', status}
local function keep(key, ttl_ms, numbers)  -- a call's outcome: its numbers in decimal (exact: cjson keeps 14 digits)
  local text = {}
  for i, v in ipairs(numbers) do text[i] = string.format('%d', v) end
  redis.call('SET', key, table.concat(text, ','), 'PX', ttl_ms)
end
local function kept_numbers(text)
  local numbers = {}
  for v in string.gmatch(text, '[^,]+') do numbers[#numbers + 1] = tonumber(v) end
  return numbers
end
local kept = redis.call('GET', KEYS[6])  -- a retry of a call that already ran: "now" is not taken again
if kept then
  local k = kept_numbers(kept)
  local reply = {'rescheduled', k[1], k[2]}
  return reply
end

local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local raw = redis.call('HGET', KEYS[2], ARGV[2])
if not raw then return {'missing'} end
local st = cjson.decode(raw)
if st.status ~= 'pending' then return {'not_pending', st.status} end
local due = tonumber(ARGV[3]) or (now + tonumber(ARGV[4]))
if due < now then return {'past', due, now} end

local earliest
for _, key in ipairs({KEYS[3], KEYS[4], KEYS[1], KEYS[5]}) do
  local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if head[2] and (earliest == nil or tonumber(head[2]) < earliest) then earliest = tonumber(head[2]) end
end
local dues = {urgent = KEYS[3], high = KEYS[4], low = KEYS[5]}  -- no priority in the state: normal
st.scheduled_at = due
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(st))
redis.call('ZADD', dues[st.priority] or KEYS[1], due, ARGV[2])
if earliest == nil or due < earliest then redis.call('PUBLISH', ARGV[5], due) end
keep(KEYS[6], ARGV[6], {due, now})
return {'rescheduled', due, now}
