-- claim: move up to `limit` due notifications into processing under a lease, counting the attempt.
-- Higher priorities go first: every due urgent one, then high, normal, low; within one, the earliest due.
-- KEYS[1] due           ZSET  normal id -> due time (epoch ms)
-- KEYS[2] processing    ZSET  id -> lease deadline (epoch ms)
-- KEYS[3] notifications HASH  id -> payload JSON
-- KEYS[4] state         HASH  id -> state JSON
-- KEYS[5] counters      HASH  lifetime totals
-- KEYS[6] due_urgent    ZSET  urgent id -> due time (epoch ms)
-- KEYS[7] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[8] due_low       ZSET  low id -> due time (epoch ms)
-- KEYS[9] op            STRING this call's outcome (the ids it claimed), so a retry of the same call gets
--                       the same batch instead of claiming another and stranding the first
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] limit         most notifications to claim
-- ARGV[3] lease_ms      how long the claimer owns them before reap hands them to another worker
-- ARGV[4] op_ttl_ms     how long the outcome is kept for retries of this call
-- Returns: {now_ms, wait_us, id, state JSON, payload JSON, ...}
--          wait_us: microseconds until the next due notification after this claim, -1 when none is pending
--          (finer than the ms scores, so a worker can wake within a fraction of a millisecond of due)
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
local kept = redis.call('GET', KEYS[9])
if kept then  -- a retry of a call that already ran (its reply was lost): the same batch, read again
  local k = kept_numbers(kept)
  local reply = {k[1], k[2]}
  for i = 3, #k do
    local id = string.format('%d', k[i])
    reply[#reply + 1] = k[i]
    reply[#reply + 1] = redis.call('HGET', KEYS[4], id) or '{}'
    reply[#reply + 1] = redis.call('HGET', KEYS[3], id) or '{}'
  end
  return reply
end

local now_us = tonumber(ARGV[1])
if now_us then
  now_us = now_us * 1000
else
  local t = redis.call('TIME')
  now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local now = math.floor(now_us / 1000)

local deadline = now + tonumber(ARGV[3])
-- Reads and writes go out as one multi-key call per command (sliced, for unpack's stack limit) rather than
-- six calls per notification: per-call overhead was most of this script's cost.
local function call_sliced(cmd, key, list, step)
  local out = {}
  for i = 1, #list, step do
    local part = redis.call(cmd, key, unpack(list, i, math.min(i + step - 1, #list)))
    if type(part) == 'table' then
      for j = 1, #part do out[#out + 1] = part[j] end
    end
  end
  return out
end

local dues = {KEYS[6], KEYS[7], KEYS[1], KEYS[8]}  -- the order priorities are claimed in
local limit = tonumber(ARGV[2])
local ids = {}
for _, due in ipairs(dues) do
  if #ids >= limit then break end
  local got = redis.call('ZRANGE', due, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit - #ids)
  if #got > 0 then
    call_sliced('ZREM', due, got, 1000)
    for _, id in ipairs(got) do ids[#ids + 1] = id end
  end
end
local reply = {now, -1}
local claimed = 0
if #ids > 0 then
  local states = call_sliced('HMGET', KEYS[4], ids, 1000)
  local payloads = call_sliced('HMGET', KEYS[3], ids, 1000)
  local hset, zadd = {}, {}
  for i, id in ipairs(ids) do
    local raw = states[i]
    local ok, st = false, nil
    if raw then ok, st = pcall(cjson.decode, raw) end
    if raw and not (ok and type(st) == 'table') then
      -- A state Lua cannot read is held under the lease as it is, for the worker to fail with its reason;
      -- raising here would fail the whole claim, and every claim after it, over one corrupt record.
      zadd[#zadd + 1], zadd[#zadd + 2] = deadline, id
      reply[#reply + 1], reply[#reply + 2], reply[#reply + 3] = id, raw, payloads[i] or '{}'
      claimed = claimed + 1
    elseif raw then
      st.status = 'processing'
      st.attempts = (tonumber(st.attempts) or 0) + 1
      st.lease_until = deadline
      raw = cjson.encode(st)
      hset[#hset + 1], hset[#hset + 2] = id, raw
      zadd[#zadd + 1], zadd[#zadd + 2] = deadline, id
      reply[#reply + 1] = id
      reply[#reply + 1] = raw
      reply[#reply + 1] = payloads[i] or '{}'
      claimed = claimed + 1
    end
  end
  if #hset > 0 then call_sliced('HSET', KEYS[4], hset, 1000) end
  if #zadd > 0 then call_sliced('ZADD', KEYS[2], zadd, 1000) end
  if claimed > 0 then
    redis.call('HINCRBY', KEYS[5], 'claimed', claimed)
  end
end

local next_due
for _, due in ipairs(dues) do
  local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
  if first[2] and (next_due == nil or tonumber(first[2]) < next_due) then next_due = tonumber(first[2]) end
end
if next_due then reply[2] = math.max(0, next_due * 1000 - now_us) end
if claimed > 0 then
  local outcome = {reply[1], reply[2]}
  for i = 3, #reply, 3 do outcome[#outcome + 1] = tonumber(reply[i]) end
  keep(KEYS[9], ARGV[4], outcome)
end
return reply
