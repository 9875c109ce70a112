-- read_inbox: one page of a recipient's inbox, newest first, each entry with whether it was read, and how many
-- of the whole inbox are unread. Changes nothing.
-- An entry is read when its stream id is at or below the reads' 'upto' (mark all) or its notification id is a
-- field of the reads hash (marked one by one); the notification id is the first "id" of the entry's JSON.
-- KEYS[1] inbox         STREAM the recipient's delivered notifications (field n: the JSON sent)
-- KEYS[2] reads         HASH  'upto' -> stream id; notification id -> when marked read (epoch ms)
-- ARGV[1] before        only entries older than this stream id ('' from the newest)
-- ARGV[2] limit         most entries in the page (0: none, only the count)
-- Returns: {unread, newest stream id or '', next_before or '', stream id, JSON, read (1 or 0), ...}
local function parse(sid)
  local ms, seq = string.match(sid, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function at_or_below(a, b)  -- stream id a <= b
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as <= bs)
end
local function id_of(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'n' then return string.match(fields[i + 1], '"id":(%d+)') end
  end
end

local upto = redis.call('HGET', KEYS[2], 'upto') or '0-0'
local above = redis.call('XRANGE', KEYS[1], '(' .. upto, '+')
local unread = 0
if #above > 0 then
  local ids = {}
  for i, entry in ipairs(above) do ids[i] = id_of(entry[2]) or '' end
  for i = 1, #ids, 500 do
    local marks = redis.call('HMGET', KEYS[2], unpack(ids, i, math.min(i + 499, #ids)))
    for j = 1, #marks do
      if not marks[j] then unread = unread + 1 end
    end
  end
end
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local reply = {unread, top[1] and top[1][1] or '', ''}
local limit = tonumber(ARGV[2])
local before_ms, before_seq = parse(ARGV[1])
local none_older = before_ms == 0 and before_seq == 0  -- nothing is older than 0-0 ('(0-0' is no range to Redis)
if limit > 0 and not none_older then
  local high = ARGV[1] == '' and '+' or '(' .. ARGV[1]
  local page = redis.call('XREVRANGE', KEYS[1], high, '-', 'COUNT', limit + 1)
  for i = 1, math.min(#page, limit) do
    local sid, fields = page[i][1], page[i][2]
    local body = ''
    for f = 1, #fields, 2 do
      if fields[f] == 'n' then body = fields[f + 1] end
    end
    local read = at_or_below(sid, upto)
    if not read then
      local id = string.match(body, '"id":(%d+)')
      read = id ~= nil and redis.call('HEXISTS', KEYS[2], id) == 1
    end
    reply[#reply + 1] = sid
    reply[#reply + 1] = body
    reply[#reply + 1] = read and 1 or 0
  end
  if #page > limit then reply[3] = page[limit][1] end
end
return reply
