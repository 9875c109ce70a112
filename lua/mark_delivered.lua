-- mark_delivered: record that a recipient's client confirmed (acked) notifications; the first ack wins.
-- KEYS[1] state         HASH  id -> state JSON
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] recipient     who acks; an id that is not theirs is left alone
-- ARGV[3..] ids         notifications acked
-- Returns: {now_ms, outcome...}: per id in order, delivered_at (newly or earlier recorded), or -1 when
--          the notification is unknown, not this recipient's, or was never handed to a channel
-- include: clock.lua
local now = clock_ms(ARGV[1])

local reply = {now}
for i = 3, #ARGV do
  local outcome = -1
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    local st = cjson.decode(raw)
    if st.recipient == ARGV[2] and (st.status == 'sent' or st.status == 'processing') then
      if not st.delivered_at then
        st.delivered_at = now
        redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(st))
      end
      outcome = st.delivered_at
    end
  end
  reply[#reply + 1] = outcome
end
return reply
