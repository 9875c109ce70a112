-- skip: apply recipients' opt-outs to notifications a worker holds under its lease. One whose recipient opted out
-- of every channel it names (for its type) ends skipped, with the reason as its last_error, and is not sent; one
-- with channels left records those it opted out of (opted_out) and stays processing, for the worker to send
-- through the rest. Only the holder of the current lease may do so (as retry.lua): a report naming an older
-- attempt is ignored. A resent call (its reply was lost) answers with the first run's outcome.
-- KEYS[1] processing    ZSET  id -> lease deadline (epoch ms)
-- KEYS[2] state         HASH  id -> state JSON
-- KEYS[3] skipped       ZSET  id -> time its record is purged (epoch ms)
-- KEYS[4] counters      HASH  lifetime totals
-- KEYS[5] pending_by_creator HASH created_by -> notifications of theirs pending or processing
-- KEYS[6] op            STRING this call's outcome, so a retry of the same call answers it again
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] keep_ms       how long a skipped record is kept
-- ARGV[3] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[4..] quadruples  id, attempt it reports on, the channels opted out of (comma-separated; '' clears what an
--                       earlier attempt recorded), and the reason ('': channels are left, so it stays processing)
-- Returns: {now_ms, skipped count}
-- include: clock.lua
-- include: outcome.lua
local kept = redis.call('GET', KEYS[6])  -- a retry of a call that already ran (its reply was lost)
if kept then return kept_numbers(kept) end

local now = clock_ms(ARGV[1])

local skipped = 0
for i = 4, #ARGV, 4 do
  local id, attempt, channels, reason = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  local raw = redis.call('HGET', KEYS[2], id)
  local ok, st = false, nil
  if raw then ok, st = pcall(cjson.decode, raw) end
  if ok and type(st) == 'table' and st.status == 'processing' and st.attempts == attempt then
    local names = {}
    for name in string.gmatch(channels, '[^,]+') do names[#names + 1] = name end
    st.opted_out = #names > 0 and names or nil  -- none: an earlier attempt's are cleared
    if reason ~= '' then
      st.status = 'skipped'
      st.skipped_at = now
      st.lease_until = nil
      st.last_error = reason
      st.last_error_detail = nil
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), id)
      if type(st.created_by) == 'string' and redis.call('HINCRBY', KEYS[5], st.created_by, -1) <= 0 then
        redis.call('HDEL', KEYS[5], st.created_by)
      end
      skipped = skipped + 1
    end
    redis.call('HSET', KEYS[2], id, cjson.encode(st))
  end
end
if skipped > 0 then redis.call('HINCRBY', KEYS[4], 'skipped', skipped) end
keep(KEYS[6], ARGV[3], {now, skipped})
return {now, skipped}
