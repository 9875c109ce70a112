-- page: up to `limit` entries of one sorted set from a position on, for tables paged by cursor: the cost is
-- O(log N + limit) wherever the position is, however large the set. Changes nothing.
-- The position is an entry (score and member); the page starts at it, or where it would be if it is gone
-- (claimed, cancelled or purged since the last page), found by binary search among the members of its score,
-- which the set keeps in byte order.
-- KEYS[1] set     ZSET  member -> score
-- ARGV[1] order   'asc' (lowest score first) or 'desc' (highest first)
-- ARGV[2] score   the position's score; '' starts at the set's first entry in that order
-- ARGV[3] member  the position's member
-- ARGV[4] limit   most entries returned
-- Returns: {member, score, member, score, ...}, in the order asked for
local set, desc, limit = KEYS[1], ARGV[1] == 'desc', tonumber(ARGV[4])

local function range(first, last)
  if desc then return redis.call('ZRANGE', set, first, last, 'REV', 'WITHSCORES') end
  return redis.call('ZRANGE', set, first, last, 'WITHSCORES')
end

-- Byte order, as the set orders members of one score (Lua's own < may follow the server's locale).
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local start = 0
if ARGV[2] ~= '' then
  local score, member = ARGV[2], ARGV[3]
  local held = redis.call('ZSCORE', set, member)
  if held and tonumber(held) == tonumber(score) then
    if desc then start = redis.call('ZREVRANK', set, member) else start = redis.call('ZRANK', set, member) end
  else
    -- Entries of the position's score sit at ranks [low, high): find the first that comes after the member.
    local low, ties
    if desc then
      low = redis.call('ZCOUNT', set, '(' .. score, '+inf')
    else
      low = redis.call('ZCOUNT', set, '-inf', '(' .. score)
    end
    ties = redis.call('ZCOUNT', set, score, score)
    local high = low + ties
    while low < high do
      local middle = math.floor((low + high) / 2)
      local m = range(middle, middle)[1]
      local after
      if desc then after = before(m, member) else after = before(member, m) end
      if after then high = middle else low = middle + 1 end
    end
    start = low
  end
end
return range(start, start + limit - 1)
