-- retry: put failed deliveries back in due after their backoff, or into failed (the dead letters)
-- when the caller's policy has no retry left for them. Only the holder of the current lease may do so:
-- a report naming an older attempt (its lease expired and the notification was claimed again, or the
-- same report was sent twice) is ignored, so it cannot requeue work another worker is delivering.
-- KEYS[1] due           ZSET  normal id -> due time (epoch ms)
-- KEYS[2] processing    ZSET  id -> lease deadline (epoch ms)
-- KEYS[3] state         HASH  id -> state JSON
-- KEYS[4] failed        ZSET  id -> time its record is purged (epoch ms): the dead-letter set
-- KEYS[5] counters      HASH  lifetime totals
-- KEYS[6] pending_by_creator HASH  created_by -> notifications of theirs pending or processing
-- KEYS[7] due_urgent    ZSET  urgent id -> due time (epoch ms)
-- KEYS[8] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[9] due_low       ZSET  low id -> due time (epoch ms)
-- KEYS[10] notifications HASH  id -> payload JSON (KEYS[10..13]: what a dead letter dropped over the cap loses)
-- KEYS[11] by_recipient ZSET  "<recipient> <id, 16 digits>" at score 0
-- KEYS[12] by_creator   ZSET  "<created_by> <id, 16 digits>" at score 0
-- KEYS[13] payload_refs HASH  call id -> records still sharing the payload stored under it
-- KEYS[14] op           STRING this call's outcome, so a retry of the same call answers it again
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] keep_ms       how long a failed record is kept
-- ARGV[3] wakeup        channel told when the earliest due time moves earlier
-- ARGV[4] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[5] max_dead      most dead letters failed may hold (0: no cap); the oldest over it are dropped
-- ARGV[6..] quintuples  id, attempt it reports on, delay_ms (negative: no retry left), error text
--                       (its first line is stored as last_error; any later lines, e.g. what a webhook
--                       answered, as last_error_detail, which only admins are shown), and '' or a JSON
--                       {done, channel_errors} for a notification with several channels (stored as is)
-- Returns: {now_ms, retried count, failed count, dropped count}
-- include: clock.lua
-- include: outcome.lua

-- include: dead.lua
local kept = redis.call('GET', KEYS[14])  -- a retry of a call that already ran (its reply was lost)
if kept then return kept_numbers(kept) end

local now = clock_ms(ARGV[1])

local earliest
for _, key in ipairs({KEYS[7], KEYS[8], KEYS[1], KEYS[9]}) do
  local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if head[2] and (earliest == nil or tonumber(head[2]) < earliest) then earliest = tonumber(head[2]) end
end
local soonest = earliest
local dues = {urgent = KEYS[7], high = KEYS[8], low = KEYS[9]}  -- no priority in the state: normal
local function release(st)  -- it leaves pending/processing: one less held by its creator
  if st.created_by and redis.call('HINCRBY', KEYS[6], st.created_by, -1) <= 0 then
    redis.call('HDEL', KEYS[6], st.created_by)
  end
end
local retried, failed = 0, 0
for i = 6, #ARGV, 5 do
  local id, attempt, delay, err = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3]
  local report = ARGV[i + 4]
  local raw = redis.call('HGET', KEYS[3], id)
  local ok, st = false, nil
  if raw then ok, st = pcall(cjson.decode, raw) end
  if raw and not (ok and type(st) == 'table') then
    -- A state no script can read (claim.lua held it as it was, reported with attempt 0): failed for good
    -- below, in a state that can be read, while this claim still holds it.
    local held = delay < 0 and redis.call('ZSCORE', KEYS[2], id)
    st = held and {status = 'processing', attempts = attempt} or {}
  end
  if raw then
    if st.status == 'processing' and st.attempts == attempt then
      redis.call('ZREM', KEYS[2], id)
      local nl = string.find(err, '\n', 1, true)
      if nl then
        st.last_error = string.sub(err, 1, nl - 1)
        st.last_error_detail = string.sub(err, nl + 1)
      else
        st.last_error = err
        st.last_error_detail = nil
      end
      st.lease_until = nil
      if report ~= '' then  -- channels delivered so far (a retry skips them), each failed one's error
        local r = cjson.decode(report)
        st.done, st.channel_errors = r.done, r.channel_errors
      end
      if delay < 0 then
        release(st)
        st.status = 'failed'
        st.failed_at = now
        redis.call('ZADD', KEYS[4], now + tonumber(ARGV[2]), id)
        failed = failed + 1
      else
        st.status = 'pending'
        st.scheduled_at = now + delay
        redis.call('ZADD', dues[st.priority] or KEYS[1], now + delay, id)
        if soonest == nil or now + delay < soonest then soonest = now + delay end
        retried = retried + 1
      end
      redis.call('HSET', KEYS[3], id, cjson.encode(st))
    end
  end
end
if retried > 0 then
  redis.call('HINCRBY', KEYS[5], 'retried', retried)
  if earliest == nil or soonest < earliest then redis.call('PUBLISH', ARGV[3], soonest) end
end
if failed > 0 then redis.call('HINCRBY', KEYS[5], 'failed', failed) end
local dropped = drop_dead(tonumber(ARGV[5]), failed, {
  failed = KEYS[4], state = KEYS[3], counters = KEYS[5], notifications = KEYS[10], by_recipient = KEYS[11],
  by_creator = KEYS[12], payload_refs = KEYS[13],
})
if retried + failed > 0 then keep(KEYS[14], ARGV[4], {now, retried, failed, dropped}) end
return {now, retried, failed, dropped}
