-- set_sockets: record how many WebSockets one gateway process has open per recipient, so any process can say
-- who is connected where. Counts are absolute, so a resent call writes the same again: no op key. The gateway
-- sends what changed since its last call; when the hash is gone (its first call, or it expired while the gateway
-- was silent past keep_ms) changes alone would leave it incomplete, so they are refused and everything is sent.
-- KEYS[1] sockets   HASH  recipient -> WebSockets open on this process, and '' -> 0 (the hash was written whole)
-- ARGV[1] keep_ms   how long the hash outlives this call
-- ARGV[2] full      '1': the pairs are every recipient with a socket open (the hash is replaced); '': changes
-- ARGV[3..] pairs   recipient, sockets open (0: none left)
-- Returns: {written}: 1 when written, 0 when changes came for a hash that is gone (send everything instead)
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], '', 0)
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  return {0}
end
for i = 3, #ARGV, 2 do
  if tonumber(ARGV[i + 1]) > 0 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  else
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return {1}
