-- move_out: take up to ARGV[2] pending entries of a sealed partition out of reach of claims, for a reshard to
-- re-issue them in the new generation. Each due (or parked) member goes into `moving` atomically, so it is
-- claimable nowhere while it moves; what is already in `moving` (an interrupted run) is handed out again
-- first. Nothing else is changed: the records stay until forward.lua, so a re-run rebuilds the same items.
-- A many-recipient call is split into its recipients still pending in it (as claim.lua walks them: passing
-- over any that got a record of their own, or whose index entry was purged), each with the due time its
-- spread gives it.
-- KEYS[1] due           ZSET  normal id (or "-<call id>") -> due time (epoch ms)
-- KEYS[2] due_urgent    ZSET  urgent id -> due time
-- KEYS[3] due_high      ZSET  high id -> due time
-- KEYS[4] due_low       ZSET  low id -> due time
-- KEYS[5] parked        ZSET  "<priority> <member>" -> due time: taken out of due by a pause
-- KEYS[6] moving        ZSET  "<priority> <member>" -> due time: being moved
-- KEYS[7] state         HASH  id -> state JSON
-- KEYS[8] notifications HASH  id -> payload JSON
-- KEYS[9] calls         HASH  call id -> "<due> <created> <count> <next> <offset> <priority> <created_by>"
-- KEYS[10] call_recipients HASH call id -> its recipients, space-separated, in id order
-- KEYS[11] by_recipient ZSET  "<recipient> <id, 16 digits>": a call's recipient missing from it was purged
-- ARGV[1] partitions    this partition's generation's count: a call's recipients have ids call id + i * it
-- ARGV[2] limit         most members to take (a call counts as one, whatever its recipients)
-- Returns: {moving member, payload JSON, created_by, item count, (old id, due ms, state JSON) per item, ...}
--          one group per member; an empty reply when nothing is left to move
local partitions, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local DUES = {normal = KEYS[1], urgent = KEYS[2], high = KEYS[3], low = KEYS[4]}

-- Fill `moving` up to the limit: due members first (every priority, any due time), then parked ones.
local held = redis.call('ZCARD', KEYS[6])
for _, priority in ipairs({'urgent', 'high', 'normal', 'low'}) do
  if held >= limit then break end
  local got = redis.call('ZRANGE', DUES[priority], 0, limit - held - 1, 'WITHSCORES')
  for i = 1, #got, 2 do
    redis.call('ZREM', DUES[priority], got[i])
    redis.call('ZADD', KEYS[6], got[i + 1], priority .. ' ' .. got[i])
    held = held + 1
  end
end
if held < limit then
  local got = redis.call('ZRANGE', KEYS[5], 0, limit - held - 1, 'WITHSCORES')
  for i = 1, #got, 2 do
    redis.call('ZREM', KEYS[5], got[i])
    redis.call('ZADD', KEYS[6], got[i + 1], got[i])
  end
end

local reply = {}
local entries = redis.call('ZRANGE', KEYS[6], 0, limit - 1, 'WITHSCORES')
for e = 1, #entries, 2 do
  local entry, due = entries[e], entries[e + 1]
  local member = string.match(entry, '^%S+ (%S+)$')
  if string.sub(member, 1, 1) ~= '-' then
    local state = redis.call('HGET', KEYS[7], member)
    if state and cjson.decode(state).status == 'pending' then
      local holder = string.match(state, '"call":(%d+)') or member
      local by = cjson.decode(state).created_by or ''
      local n = #reply
      reply[n + 1], reply[n + 2], reply[n + 3], reply[n + 4] =
        entry, redis.call('HGET', KEYS[8], holder) or '{}', by, 1
      reply[n + 5], reply[n + 6], reply[n + 7] = member, due, state
    else  -- gone, or no longer pending (cancelled as it was taken): nothing to move
      local n = #reply
      reply[n + 1], reply[n + 2], reply[n + 3], reply[n + 4] = entry, '{}', '', 0
    end
  else
    local cid = string.sub(member, 2)
    local header = redis.call('HGET', KEYS[9], cid)
    local n = #reply
    reply[n + 1], reply[n + 2], reply[n + 3], reply[n + 4] = entry, '{}', '', 0
    if header then
      local at, created, count, nxt, offset, priority, creator =
        string.match(header, '^(%d+) (%d+) (%d+) (%d+) (%d+) (%S+) ?(%S*)$')
      count, nxt, offset = tonumber(count), tonumber(nxt), tonumber(offset)
      local payload = redis.call('HGET', KEYS[8], cid) or '{}'
      local spread = false
      if count > 1 and string.find(payload, '"spread_ms":', 1, true) then
        spread = tonumber(cjson.decode(payload).spread_ms or '') or false
        if spread and spread <= 0 then spread = false end
      end
      local tail = ',"created_at":' .. created
      if creator ~= '' then tail = tail .. ',"created_by":' .. cjson.encode(creator) end
      if priority ~= 'normal' then tail = tail .. ',"priority":"' .. priority .. '"' end
      tail = tail .. '}'
      local list = redis.call('HGET', KEYS[10], cid)
      local items = 0
      for k = nxt, count - 1 do
        local space = string.find(list, ' ', offset, true)
        local person = string.sub(list, offset, space and space - 1 or -1)
        offset = space and space + 1 or #list + 1
        local id = string.format('%d', tonumber(cid) + k * partitions)
        local indexed = redis.call('ZSCORE', KEYS[11], person .. ' ' .. string.format('%016d', tonumber(id)))
        if indexed and redis.call('HEXISTS', KEYS[7], id) == 0 then
          local at_k = spread and tonumber(at) + math.floor(k * spread / count) or tonumber(at)
          local m = #reply
          reply[m + 1], reply[m + 2] = id, string.format('%d', at_k)
          reply[m + 3] = '{"status":"pending","attempts":0,"recipient":' .. cjson.encode(person)
            .. ',"scheduled_at":' .. string.format('%d', at_k) .. tail
          items = items + 1
        end
      end
      reply[n + 2], reply[n + 3], reply[n + 4] = payload, creator, items
    end
  end
end
return reply
