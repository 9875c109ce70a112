-- erase_recipient: remove what zsched keeps to reach one recipient (a data-protection erasure): their contact
-- data and preferences (opt-outs included), and their inbox stream (with what they marked read in it). A resent call (its reply was
-- lost) answers with the first run's outcome.
-- KEYS[1] contacts      HASH  recipient -> contact JSON
-- KEYS[2] inbox         STREAM the recipient's delivered notifications
-- KEYS[3] with_preferences SET recipients with a zone or quiet hours
-- KEYS[4] op            STRING this call's outcome, so a retry of the same call answers it again
-- KEYS[5] reads         HASH  what the recipient marked read in their inbox
-- KEYS[6] websocket_opt_outs SET recipients with an opt-out of the websocket channel (or of every channel)
-- ARGV[1] recipient
-- ARGV[2] op_ttl_ms     how long the outcome is kept for retries of this call
-- Returns: {contact removed (1 or 0), inbox entries removed}
local kept = redis.call('GET', KEYS[4])
if kept then
  local sep = string.find(kept, ',', 1, true)
  return {tonumber(string.sub(kept, 1, sep - 1)), tonumber(string.sub(kept, sep + 1))}
end
local contact = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[6], ARGV[1])
local entries = 0
if redis.call('EXISTS', KEYS[2]) == 1 then
  entries = redis.call('XLEN', KEYS[2])
  redis.call('DEL', KEYS[2])
end
redis.call('DEL', KEYS[5])
redis.call('SET', KEYS[4], contact .. ',' .. entries, 'PX', ARGV[2])
return {contact, entries}
