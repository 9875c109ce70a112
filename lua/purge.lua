-- purge: remove terminal records whose retention ran out, with their index entries.
-- KEYS[1] sent          ZSET  id -> time its record is purged (epoch ms)
-- KEYS[2] cancelled     ZSET  id -> time its record is purged (epoch ms)
-- KEYS[3] failed        ZSET  id -> time its record is purged (epoch ms)
-- KEYS[4] notifications HASH  id -> payload JSON
-- KEYS[5] state         HASH  id -> state JSON
-- KEYS[6] by_recipient  ZSET  "<recipient> <id, 16 digits>" at score 0
-- KEYS[7] counters      HASH  lifetime totals
-- KEYS[8] by_creator    ZSET  "<created_by> <id, 16 digits>" at score 0
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] limit         most records to purge from each terminal set in one call
-- Returns: {now_ms, purged count}
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local purged = 0
for _, terminal in ipairs({KEYS[1], KEYS[2], KEYS[3]}) do
  local ids = redis.call('ZRANGE', terminal, '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
  for _, id in ipairs(ids) do
    local raw = redis.call('HGET', KEYS[5], id)
    if raw then
      local st = cjson.decode(raw)
      redis.call('ZREM', KEYS[6], st.recipient .. ' ' .. string.format('%016d', tonumber(id)))
      if st.created_by then
        redis.call('ZREM', KEYS[8], st.created_by .. ' ' .. string.format('%016d', tonumber(id)))
      end
    end
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[5], id)
    redis.call('ZREM', terminal, id)
    purged = purged + 1
  end
end
if purged > 0 then redis.call('HINCRBY', KEYS[7], 'purged', purged) end
return {now, purged}
