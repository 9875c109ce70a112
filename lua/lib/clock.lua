-- clock (included): "now" in epoch ms, pinned by the caller (tests, a resent call) or read from the server.
local function clock_ms(pinned)  -- the pinned time when ARGV gave one, else the server's TIME
  local now = tonumber(pinned)
  if now then return now end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
