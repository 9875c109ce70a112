-- ack: mark delivered notifications sent and schedule their records for removal.
-- A notification whose lease expired and was handed back to due is still marked sent here:
-- it was delivered, and marking it stops a second delivery.
-- KEYS[1] due           ZSET  normal id -> due time (epoch ms)
-- KEYS[2] processing    ZSET  id -> lease deadline (epoch ms)
-- KEYS[3] state         HASH  id -> state JSON
-- KEYS[4] sent          ZSET  id -> time its record is purged (epoch ms)
-- KEYS[5] counters      HASH  lifetime totals
-- KEYS[6] pending_by_creator HASH  created_by -> notifications of theirs pending or processing
-- KEYS[7] due_urgent    ZSET  urgent id -> due time (epoch ms)
-- KEYS[8] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[9] due_low       ZSET  low id -> due time (epoch ms)
-- KEYS[10] op           STRING this call's outcome, so a retry of the same call answers it again
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] keep_ms       how long a sent record is kept
-- ARGV[3] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[4..] ids         notifications delivered
-- Returns: {now_ms, acked count}
-- include: clock.lua
-- include: outcome.lua
-- include: sliced.lua
local kept = redis.call('GET', KEYS[10])  -- a retry of a call that already ran (its reply was lost)
if kept then return kept_numbers(kept) end

local now = clock_ms(ARGV[1])

local purge_at = now + tonumber(ARGV[2])
local ids, seen = {}, {}
for i = 4, #ARGV do
  if not seen[ARGV[i]] then
    seen[ARGV[i]] = true
    ids[#ids + 1] = ARGV[i]
  end
end
if #ids == 0 then return {now, 0} end
local states = call_sliced('HMGET', KEYS[3], ids, 1000)
local function release(st)  -- it leaves pending/processing: one less held by its creator
  if st.created_by and redis.call('HINCRBY', KEYS[6], st.created_by, -1) <= 0 then
    redis.call('HDEL', KEYS[6], st.created_by)
  end
end
local hset, done, zadd = {}, {}, {}
local dues = {urgent = KEYS[7], high = KEYS[8], low = KEYS[9]}  -- no priority in the state: normal
local undue = {}  -- due set -> ids acked while pending there (their lease expired and reap requeued them)
for i, id in ipairs(ids) do
  local raw = states[i]
  if raw then
    local st = cjson.decode(raw)
    if st.status == 'processing' or st.status == 'pending' then
      release(st)
      st.status = 'sent'
      st.sent_at = now
      st.lease_until = nil
      hset[#hset + 1], hset[#hset + 2] = id, cjson.encode(st)
      done[#done + 1] = id
      zadd[#zadd + 1], zadd[#zadd + 2] = purge_at, id
      local due = dues[st.priority] or KEYS[1]
      undue[due] = undue[due] or {}
      table.insert(undue[due], id)
    end
  end
end
if #done > 0 then
  call_sliced('HSET', KEYS[3], hset, 1000)
  call_sliced('ZREM', KEYS[2], done, 1000)
  for due, list in pairs(undue) do call_sliced('ZREM', due, list, 1000) end
  call_sliced('ZADD', KEYS[4], zadd, 1000)
  redis.call('HINCRBY', KEYS[5], 'sent', #done)
  keep(KEYS[10], ARGV[3], {now, #done})
end
return {now, #done}
