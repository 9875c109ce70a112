-- reap: hand notifications whose lease expired (their worker died or stalled) back to due,
-- or fail them when they have used every attempt, so a notification that kills workers cannot loop forever.
-- KEYS[1] due           ZSET  id -> due time (epoch ms)
-- KEYS[2] processing    ZSET  id -> lease deadline (epoch ms)
-- KEYS[3] state         HASH  id -> state JSON
-- KEYS[4] failed        ZSET  id -> time its record is purged (epoch ms): the dead-letter set
-- KEYS[5] counters      HASH  lifetime totals
-- KEYS[6] pending_by_creator HASH  created_by -> notifications of theirs pending or processing
-- KEYS[7] due_urgent    ZSET  urgent id -> due time (epoch ms); KEYS[1] is normal's
-- KEYS[8] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[9] due_low       ZSET  low id -> due time (epoch ms)
-- KEYS[10] notifications HASH  id -> payload JSON (KEYS[10..13]: what a dead letter dropped over the cap loses)
-- KEYS[11] by_recipient ZSET  "<recipient> <id, 16 digits>" at score 0
-- KEYS[12] by_creator   ZSET  "<created_by> <id, 16 digits>" at score 0
-- KEYS[13] payload_refs HASH  call id -> records still sharing the payload stored under it
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] limit         most leases to reap in one call
-- ARGV[3] max_attempts  attempts after which an expired lease fails the notification
-- ARGV[4] keep_ms       how long a failed record is kept
-- ARGV[5] wakeup        channel told when the earliest due time moves earlier
-- ARGV[6] lease_ms      the lease workers take ('' when unknown), named in the reason each expiry records
-- ARGV[7] max_dead      most dead letters failed may hold (0: no cap); the oldest over it are dropped
-- Returns: {now_ms, requeued count, failed count, dropped count}
-- include: clock.lua

-- include: dead.lua
local now = clock_ms(ARGV[1])

local ids = redis.call('ZRANGE', KEYS[2], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local function release(st)  -- it leaves pending/processing: one less held by its creator
  if st.created_by and redis.call('HINCRBY', KEYS[6], st.created_by, -1) <= 0 then
    redis.call('HDEL', KEYS[6], st.created_by)
  end
end
local lease_ms = tonumber(ARGV[6])
local held = lease_ms and string.format('after %.1f s ', lease_ms / 1000) or ''
local requeued, failed = 0, 0
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[2], id)
  local raw = redis.call('HGET', KEYS[3], id)
  if raw then
    local ok, st = pcall(cjson.decode, raw)
    if not (ok and type(st) == 'table') then  -- unreadable (see claim.lua): no retry can read it either
      st = {attempts = tonumber(ARGV[3])}
    end
    st.lease_until = nil
    st.last_error = 'lease expired ' .. held .. 'on attempt ' .. st.attempts .. ': the worker stopped or stalled'
    st.last_error_detail = nil
    if st.attempts >= tonumber(ARGV[3]) then
      release(st)
      st.status = 'failed'
      st.failed_at = now
      redis.call('ZADD', KEYS[4], now + tonumber(ARGV[4]), id)
      failed = failed + 1
    else
      st.status = 'pending'
      redis.call('ZADD', ({urgent = KEYS[7], high = KEYS[8], low = KEYS[9]})[st.priority] or KEYS[1], now, id)
      requeued = requeued + 1
    end
    redis.call('HSET', KEYS[3], id, cjson.encode(st))
  end
end
if requeued > 0 then
  redis.call('HINCRBY', KEYS[5], 'reaped', requeued)
  redis.call('PUBLISH', ARGV[5], now)
end
if failed > 0 then redis.call('HINCRBY', KEYS[5], 'failed', failed) end
local dropped = drop_dead(tonumber(ARGV[7]), failed, {
  failed = KEYS[4], state = KEYS[3], counters = KEYS[5], notifications = KEYS[10], by_recipient = KEYS[11],
  by_creator = KEYS[12], payload_refs = KEYS[13],
})
return {now, requeued, failed, dropped}
