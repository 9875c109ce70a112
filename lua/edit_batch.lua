-- edit_batch: give every still-pending notification of one partition's part of a schedule call (a call with
-- several recipients: ids first + i * partitions, i < count) new content, by replacing the payload its call
-- stores once under its id. Those of the call that already left pending keep what they had: the old payload
-- moves, once, to a fresh holder id from the partition's sequence, and they name it instead. A pending one edited alone earlier keeps its own content (it is counted with
-- those that left pending). The payload is replaced only if it is still the one the caller read (else 'stale':
-- read again and retry); '' stands for none left (every notification of the call left pending, was edited alone,
-- or was purged), and then only the counts are made.
-- KEYS[1] notifications HASH  id -> payload JSON (a call's under the call id)
-- KEYS[2] state         HASH  id -> state JSON
-- KEYS[3] calls         HASH  call id -> "<due> <created> <count> <next> <offset> <priority> <created_by>"
-- KEYS[4] call_recipients HASH call id -> its recipients, space-separated, in id order
-- KEYS[5] by_recipient  ZSET  "<recipient> <id, 16 digits>": one missing from it was purged
-- KEYS[6] payload_refs  HASH  call id -> records still sharing the payload stored under it
-- KEYS[7] sequence      STRING the last sequence number handed out (a fresh holder id is one more)
-- KEYS[8] op            STRING this call's outcome, so a retry of the same call answers it again
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] first         the part's first id: the call's id, its payload's holder
-- ARGV[3] count         how many ids the part has
-- ARGV[4] partitions    partition count: the part's ids are first + i * partitions
-- ARGV[5] read          the call's payload JSON as the caller read it (and made the new one from), or ''
--                       when there was none
-- ARGV[6] payload       the new payload JSON
-- ARGV[7] op_ttl_ms     how long the outcome is kept for retries of this call
-- Returns: {'edited', now_ms, edited, not_pending, missing} | {'stale'}
-- include: clock.lua
-- include: sliced.lua
-- include: part.lua
local kept = redis.call('GET', KEYS[8])  -- a retry of a call that already ran (its reply was lost)
if kept then
  local k = {}
  for v in string.gmatch(kept, '%d+') do k[#k + 1] = tonumber(v) end
  return {'edited', k[1], k[2], k[3], k[4]}
end

local now = clock_ms(ARGV[1])
local first, count, step = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local cid = string.format('%d', first)
local old = ARGV[5]
local current = redis.call('HGET', KEYS[1], cid)
if (current or '') ~= old then return {'stale'} end

local ids, states, _, indexed =
  read_part(first, count, step, {state = KEYS[2], calls = KEYS[3], call_recipients = KEYS[4], by_recipient = KEYS[5]})

local edited, not_pending, missing, kept_old = 0, 0, 0, 0
local states_out = {}
local holder  -- where the old payload goes for those that left pending: made when the first needs it
for i, id in ipairs(ids) do
  local raw = states[i]
  if raw then
    local st = cjson.decode(raw)
    local shares = st.call and string.format('%d', st.call) == cid
    if st.status == 'pending' and shares then
      edited = edited + 1
    elseif not shares or not current then  -- left pending, or edited alone earlier: its content is its own
      not_pending = not_pending + 1
    else  -- it left pending: it keeps what it was sent (or would have been), the old payload
      not_pending = not_pending + 1
      holder = holder or string.format('%d', redis.call('INCR', KEYS[7]) * step + first % step)
      st.call = tonumber(holder)
      states_out[#states_out + 1], states_out[#states_out + 2] = id, cjson.encode(st)
      kept_old = kept_old + 1
    end
  elseif indexed[i] then
    edited = edited + 1  -- still inside the call: it reads the call's payload
  else
    missing = missing + 1
  end
end
if #states_out > 0 then call_sliced('HSET', KEYS[2], states_out, 1000) end
if holder then
  redis.call('HSET', KEYS[1], holder, old)
  redis.call('HSET', KEYS[6], holder, kept_old)
end
if current then
  local left = tonumber(redis.call('HGET', KEYS[6], cid) or '0') - kept_old  -- (HINCRBY would refuse "-0")
  redis.call('HSET', KEYS[6], cid, left)
  if left > 0 then
    redis.call('HSET', KEYS[1], cid, ARGV[6])
  else  -- nobody shares it any more: it goes, as purge.lua takes it with the last record sharing it
    redis.call('HDEL', KEYS[6], cid)
    redis.call('HDEL', KEYS[1], cid)
  end
end
redis.call('SET', KEYS[8], string.format('%d %d %d %d', now, edited, not_pending, missing), 'PX', ARGV[7])
return {'edited', now, edited, not_pending, missing}
