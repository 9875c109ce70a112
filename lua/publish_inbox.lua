-- publish_inbox: append each delivered notification to its recipient's inbox stream, then PUBLISH it
-- on the recipient's channel with the stream id spliced in, so a client can resume from that id.
-- KEYS[1..] inboxes     STREAM per recipient (capped), one key per message, all in one partition
-- ARGV[1] maxlen        approximate cap on each inbox stream
-- ARGV[2..] pairs       channel, message JSON object (one pair per key, in key order)
-- Returns: {stream id, ...} in key order
local maxlen = tonumber(ARGV[1])
local reply = {}
for i = 1, #KEYS do
  local channel, body = ARGV[2 * i], ARGV[2 * i + 1]
  local sid = redis.call('XADD', KEYS[i], 'MAXLEN', '~', maxlen, '*', 'n', body)
  redis.call('PUBLISH', channel, '{"stream_id":"' .. sid .. '",' .. string.sub(body, 2))
  reply[i] = sid
end
return reply
