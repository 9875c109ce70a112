-- renew: push forward the lease of notifications a worker is still delivering, so a batch slower than one
-- lease is not reaped and delivered twice. Only the claim that holds a notification may renew it: the
-- claim is named by its attempt (as in retry.lua); an id whose lease expired (reaped, perhaps claimed
-- again by another worker) or that left processing is skipped and reported, never renewed.
-- KEYS[1] processing    ZSET  id -> lease deadline (epoch ms)
-- KEYS[2] state         HASH  id -> state JSON
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] lease_ms      how long from now the renewed leases last
-- ARGV[3..] pairs       id, attempt the caller's claim made
-- Returns: {now_ms, lease deadline ms, id no longer held...}
-- include: clock.lua
local now = clock_ms(ARGV[1])

local deadline = now + tonumber(ARGV[2])
local reply = {now, deadline}
local hset, zadd = {}, {}
for i = 3, #ARGV, 2 do
  local id, attempt = ARGV[i], tonumber(ARGV[i + 1])
  local raw = redis.call('HGET', KEYS[2], id)
  local st = raw and cjson.decode(raw)
  -- A lease past its deadline but not yet reaped is still this claim's: renewing it is safe, since reap
  -- and this script never interleave, and it spares a delivery that is about to finish.
  if st and st.status == 'processing' and st.attempts == attempt then
    if deadline > (st.lease_until or 0) then
      st.lease_until = deadline
      hset[#hset + 1], hset[#hset + 2] = id, cjson.encode(st)
      zadd[#zadd + 1], zadd[#zadd + 2] = deadline, id
    end
  else
    reply[#reply + 1] = id
  end
end
-- One call per command, sliced for unpack's stack limit.
for i = 1, #hset, 1000 do redis.call('HSET', KEYS[2], unpack(hset, i, math.min(i + 999, #hset))) end
for i = 1, #zadd, 1000 do redis.call('ZADD', KEYS[1], unpack(zadd, i, math.min(i + 999, #zadd))) end
return reply
