-- resume: lift pauses in one partition, and put up to ARGV[2] parked notifications back into their due sets
-- at their own due times, so they drain in due order, priorities first. Every parked one goes back, whatever
-- its type: claim.lua parks again those whose type is still paused. A member already back in due (rescheduled
-- while parked) keeps its due time there (ZADD NX). The same call run twice has the same outcome.
-- KEYS[1] paused        HASH  '*' (everything) or a type -> when it was paused (epoch ms)
-- KEYS[2] parked        ZSET  "<priority> <member>" -> its due time (epoch ms)
-- KEYS[3] due           ZSET  normal id -> due time (epoch ms)
-- KEYS[4] due_urgent    ZSET  urgent id -> due time (epoch ms)
-- KEYS[5] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[6] due_low       ZSET  low id -> due time (epoch ms)
-- ARGV[1] scope         '' (every pause), '*' (the pause of everything) or a type
-- ARGV[2] batch         most parked notifications to put back in this call
-- ARGV[3] wakeup        channel told when a pause is lifted or something goes back into due, so sleeping
--                       workers claim at once
-- Returns: {pauses lifted, notifications put back, parked ones left}
local lifted = 0
if ARGV[1] == '' then
  lifted = redis.call('HLEN', KEYS[1])
  redis.call('DEL', KEYS[1])
else
  lifted = redis.call('HDEL', KEYS[1], ARGV[1])
end
local dues = {normal = KEYS[3], urgent = KEYS[4], high = KEYS[5], low = KEYS[6]}
local got = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
local moved = {}
for i = 1, #got, 2 do
  local priority, member = string.match(got[i], '^(%a+) (.+)$')
  local due = priority and dues[priority]
  if due then redis.call('ZADD', due, 'NX', got[i + 1], member) end
  moved[#moved + 1] = got[i]
end
if #moved > 0 then redis.call('ZREM', KEYS[2], unpack(moved)) end
if lifted > 0 or #moved > 0 then
  redis.call('PUBLISH', ARGV[3], '0')
end
return {lifted, #moved / 1, redis.call('ZCARD', KEYS[2])}
