-- purge: remove terminal records whose retention ran out, with their index entries.
-- A record of a many-recipient call ("call" in its state) shares its call's payload: the payload goes with
-- the last of them. A record scheduled with a collapse key takes its collapse index entry with it while the entry
-- still names it (a newer one's entry stays). At most `limit` records in one call, taken from sent, cancelled,
-- failed, expired, collapsed, throttled, then skipped (a caller that gets a full `limit` back calls again). Each delete is one
-- multi-key call per slice of ids, not one per record.
-- KEYS[1] sent          ZSET  id -> time its record is purged (epoch ms)
-- KEYS[2] cancelled     ZSET  id -> time its record is purged (epoch ms)
-- KEYS[3] failed        ZSET  id -> time its record is purged (epoch ms)
-- KEYS[4] notifications HASH  id -> payload JSON
-- KEYS[5] state         HASH  id -> state JSON
-- KEYS[6] by_recipient  ZSET  "<recipient> <id, 16 digits>" at score 0
-- KEYS[7] counters      HASH  lifetime totals
-- KEYS[8] by_creator    ZSET  "<created_by> <id, 16 digits>" at score 0
-- KEYS[9] payload_refs  HASH  call id -> records still sharing the payload stored under it
-- KEYS[10] expired      ZSET  id -> time its record is purged (epoch ms)
-- KEYS[11] collapsed    ZSET  id -> time its record is purged (epoch ms)
-- KEYS[12] collapse     HASH  "<recipient> <collapse key>" -> newest id scheduled with them
-- KEYS[13] throttled    ZSET  id -> time its record is purged (epoch ms)
-- KEYS[14] skipped      ZSET  id -> time its record is purged (epoch ms)
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] limit         most records to purge in one call, across the seven terminal sets
-- Returns: {now_ms, purged count}
-- include: clock.lua
-- include: sliced.lua
local now = clock_ms(ARGV[1])

-- The collapse key a payload was scheduled with, or nil. Decoded only when the payload names one somewhere (a
-- key of the same name inside data decodes to nothing at the top level).
local collapse_keys = {}  -- payload holder -> its collapse key, or false
local function collapse_key_of(holder, payload)
  local key = collapse_keys[holder]
  if key == nil then
    key = false
    if payload and string.find(payload, '"collapse_key":', 1, true) then
      local ok, body = pcall(cjson.decode, payload)
      if ok and type(body) == 'table' and type(body.collapse_key) == 'string' then key = body.collapse_key end
    end
    collapse_keys[holder] = key
  end
  return key
end

local limit = tonumber(ARGV[2])
local purged = 0
for _, terminal in ipairs({KEYS[1], KEYS[2], KEYS[3], KEYS[10], KEYS[11], KEYS[13], KEYS[14]}) do
  if purged >= limit then break end
  local ids = redis.call('ZRANGE', terminal, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit - purged)
  if #ids > 0 then
    local states = call_sliced('HMGET', KEYS[5], ids, 500)
    local recipients, creators, payloads, shared = {}, {}, {}, {}
    local decoded, holders, distinct, bodies = {}, {}, {}, {}
    for i, id in ipairs(ids) do
      local st = states[i] and cjson.decode(states[i])
      decoded[i] = st
      holders[i] = st and st.call and string.format('%d', st.call) or id
      if bodies[holders[i]] == nil then
        bodies[holders[i]] = false
        distinct[#distinct + 1] = holders[i]
      end
    end
    for j, body in ipairs(call_sliced('HMGET', KEYS[4], distinct, 500)) do bodies[distinct[j]] = body end
    for i, id in ipairs(ids) do
      local st = decoded[i]
      local key = st and collapse_key_of(holders[i], bodies[holders[i]])
      if key then
        local field = st.recipient .. ' ' .. key
        if redis.call('HGET', KEYS[12], field) == id then redis.call('HDEL', KEYS[12], field) end
      end
      if st then
        local suffix = ' ' .. string.format('%016d', tonumber(id))
        recipients[#recipients + 1] = st.recipient .. suffix
        if st.created_by then creators[#creators + 1] = st.created_by .. suffix end
      end
      if st and st.call then
        local call = string.format('%d', st.call)
        shared[call] = (shared[call] or 0) + 1
      else
        payloads[#payloads + 1] = id
      end
    end
    for call, gone in pairs(shared) do
      if redis.call('HINCRBY', KEYS[9], call, -gone) <= 0 then
        redis.call('HDEL', KEYS[9], call)
        payloads[#payloads + 1] = call
      end
    end
    call_sliced('ZREM', KEYS[6], recipients, 500)
    call_sliced('ZREM', KEYS[8], creators, 500)
    call_sliced('HDEL', KEYS[4], payloads, 500)
    call_sliced('HDEL', KEYS[5], ids, 500)
    call_sliced('ZREM', terminal, ids, 500)
    purged = purged + #ids
  end
end
if purged > 0 then redis.call('HINCRBY', KEYS[7], 'purged', purged) end
return {now, purged}
