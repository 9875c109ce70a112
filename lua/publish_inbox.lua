-- publish_inbox: append each delivered notification to its recipient's inbox stream, then PUBLISH it
-- on the recipient's channel with the stream id spliced in, so a client can resume from that id.
-- An inbox keeps what is younger than the retention and at most about maxlen entries, and expires once
-- the retention has passed with nothing appended. Each entry also records the id of the entry before it
-- (field p, '0-0' for a new stream), so a replay can tell a trimmed gap from ids that never existed.
-- KEYS[1] op            STRING this call's outcome (the stream ids), so a retry of the same call appends
--                       and publishes nothing again
-- KEYS[2..] inboxes     STREAM per recipient, one key per message, all in the op's partition
-- ARGV[1] maxlen        approximate cap on each inbox stream
-- ARGV[2] keep_ms       retention: entries older than this are trimmed, and an idle inbox expires after it
-- ARGV[3] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[4] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[5] publish       'SPUBLISH' on a Redis Cluster (sharded pub/sub: the channel's slot is the op's),
--                       anything else PUBLISH
-- ARGV[6..] pairs       channel, message JSON object (one pair per inbox, in key order)
-- Returns: {stream id, ...} in inbox key order
-- include: clock.lua
local kept = redis.call('GET', KEYS[1])  -- a retry of a call that already ran (its reply was lost)
if kept then  -- kept as the stream ids, comma-separated
  local reply = {}
  for sid in string.gmatch(kept, '[^,]+') do reply[#reply + 1] = sid end
  return reply
end
local maxlen, keep = tonumber(ARGV[1]), tonumber(ARGV[2])
local publish = ARGV[5] == 'SPUBLISH' and 'SPUBLISH' or 'PUBLISH'
local now = clock_ms(ARGV[3])

local reply = {}
for i = 1, #KEYS - 1 do
  local inbox, channel, body = KEYS[i + 1], ARGV[2 * i + 4], ARGV[2 * i + 5]
  local top = redis.call('XREVRANGE', inbox, '+', '-', 'COUNT', 1)
  local prev = top[1] and top[1][1] or '0-0'
  -- trim by age before the append, so a clock ahead of the stream ids never trims the new entry
  redis.call('XTRIM', inbox, 'MINID', string.format('%d', math.max(0, now - keep)))
  local sid = redis.call('XADD', inbox, 'MAXLEN', '~', maxlen, '*', 'n', body, 'p', prev)
  redis.call('PEXPIRE', inbox, ARGV[2])
  redis.call(publish, channel, '{"stream_id":"' .. sid .. '",' .. string.sub(body, 2))
  reply[i] = sid
end
if #reply > 0 then redis.call('SET', KEYS[1], table.concat(reply, ','), 'PX', ARGV[4]) end
return reply
