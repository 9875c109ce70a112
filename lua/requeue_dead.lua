-- requeue_dead: move dead letters (failed notifications) back to due now, with a fresh set of attempts.
-- KEYS[1] due           ZSET  normal id -> due time (epoch ms)
-- KEYS[2] failed        ZSET  id -> time its record is purged (epoch ms): the dead-letter set
-- KEYS[3] state         HASH  id -> state JSON
-- KEYS[4] counters      HASH  lifetime totals
-- KEYS[5] pending_by_creator HASH  created_by -> notifications of theirs pending or processing
-- KEYS[6] due_urgent    ZSET  urgent id -> due time (epoch ms)
-- KEYS[7] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[8] due_low       ZSET  low id -> due time (epoch ms)
-- KEYS[9] op            STRING this call's outcome, so a retry of the same call answers it again
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] wakeup        channel told when the earliest due time moves earlier
-- ARGV[3] limit         when no ids follow: requeue up to this many of the oldest dead letters
-- ARGV[4] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[5..] ids         the dead letters to requeue; an id that is not failed is skipped
-- Returns: {now_ms, requeued id...}
-- include: clock.lua
-- include: outcome.lua
local kept = redis.call('GET', KEYS[9])  -- a retry of a call that already ran (its reply was lost)
if kept then return kept_numbers(kept) end

local now = clock_ms(ARGV[1])

local ids = {}
if #ARGV >= 5 then
  for i = 5, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[3]) - 1)
end

local reply = {now}
local dues = {urgent = KEYS[6], high = KEYS[7], low = KEYS[8]}  -- no priority in the state: normal
for _, id in ipairs(ids) do
  local raw = redis.call('HGET', KEYS[3], id)
  if raw and redis.call('ZSCORE', KEYS[2], id) then
    local st = cjson.decode(raw)
    if st.status == 'failed' then
      st.status = 'pending'
      if st.created_by then redis.call('HINCRBY', KEYS[5], st.created_by, 1) end
      st.attempts = 0
      st.scheduled_at = now
      st.failed_at = nil
      redis.call('HSET', KEYS[3], id, cjson.encode(st))
      redis.call('ZREM', KEYS[2], id)
      redis.call('ZADD', dues[st.priority] or KEYS[1], now, id)
      reply[#reply + 1] = id
    end
  end
end
if #reply > 1 then
  redis.call('HINCRBY', KEYS[4], 'requeued', #reply - 1)
  redis.call('PUBLISH', ARGV[2], now)
  keep(KEYS[9], ARGV[4], reply)
end
return reply
