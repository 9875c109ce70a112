-- mark_read: the recipient marked notifications read: some by id, or everything in their inbox ('all'). The
-- state of each (sent, theirs) records read_at (the first mark wins); the inbox's reads hash records it so the
-- unread count leaves it out, and the new count is PUBLISHed on the recipient's channel for their sockets.
-- The reads hash expires with the inbox and keeps no id the inbox no longer holds above its 'upto', so it is
-- bounded as the inbox is. Marking twice changes nothing more, so a resent call needs no op key.
-- KEYS[1] state         HASH  id -> state JSON
-- KEYS[2] inbox         STREAM the recipient's delivered notifications (field n: the JSON sent)
-- KEYS[3] reads         HASH  'upto' -> stream id; notification id -> when marked read (epoch ms)
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] recipient     whose inbox; an id that is not theirs, or not sent, is left alone
-- ARGV[3] channel       the recipient's live channel: {"type":"unread","count":N,"stream_id":newest} goes there
-- ARGV[4] mode          'all', or 'ids'
-- ARGV[5..] ids         with 'ids', the notifications marked read
-- Returns: {unread, read_at or -1 per id in order} (-1: unknown, not this recipient's, or not sent)
-- include: clock.lua
local now = clock_ms(ARGV[1])
local function id_of(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'n' then return string.match(fields[i + 1], '"id":(%d+)') end
  end
end
local function mark_state(id)  -- read_at on the recipient's sent notification; nil when it is not one
  local raw = redis.call('HGET', KEYS[1], id)
  if not raw then return nil end
  local ok, st = pcall(cjson.decode, raw)
  if not ok or type(st) ~= 'table' or st.recipient ~= ARGV[2] or st.status ~= 'sent' then return nil end
  if not st.read_at then
    st.read_at = now
    redis.call('HSET', KEYS[1], id, cjson.encode(st))
  end
  return st.read_at
end

local reply = {0}
local upto = redis.call('HGET', KEYS[3], 'upto') or '0-0'
local above = redis.call('XRANGE', KEYS[2], '(' .. upto, '+')
local above_ids = {}
for i, entry in ipairs(above) do above_ids[i] = id_of(entry[2]) or '' end
if ARGV[4] == 'all' then
  for _, id in ipairs(above_ids) do
    if id ~= '' and not redis.call('HGET', KEYS[3], id) then mark_state(id) end
  end
  redis.call('DEL', KEYS[3])
  if #above > 0 then upto = above[#above][1] end
  if upto ~= '0-0' then redis.call('HSET', KEYS[3], 'upto', upto) end
  above, above_ids = {}, {}
else
  for i = 5, #ARGV do
    local read_at = mark_state(ARGV[i])
    if read_at then redis.call('HSETNX', KEYS[3], ARGV[i], read_at) end
    reply[#reply + 1] = read_at or -1
  end
  -- Bounded as the inbox is: ids it no longer holds above 'upto' (trimmed, or never in it) are dropped.
  if redis.call('HLEN', KEYS[3]) > #above + 1 then
    local keep = {upto = true}
    for _, id in ipairs(above_ids) do keep[id] = true end
    local fields = redis.call('HKEYS', KEYS[3])
    for _, field in ipairs(fields) do
      if not keep[field] then redis.call('HDEL', KEYS[3], field) end
    end
  end
end
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[3], ttl)  -- the reads go when the inbox does
elseif ttl == -2 then
  redis.call('DEL', KEYS[3])  -- no inbox: nothing to remember reads of
end
local unread = 0
if #above_ids > 0 then
  for i = 1, #above_ids, 500 do
    local marks = redis.call('HMGET', KEYS[3], unpack(above_ids, i, math.min(i + 499, #above_ids)))
    for j = 1, #marks do
      if not marks[j] then unread = unread + 1 end
    end
  end
end
reply[1] = unread
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
redis.call('PUBLISH', ARGV[3], '{"type":"unread","count":' .. unread .. ',"stream_id":"' .. (top[1] and top[1][1] or '0-0')
  .. '"}')
return reply
