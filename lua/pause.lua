-- pause: stop delivery in one partition, of everything ('*') or of one type, until resume.lua; claim.lua reads
-- KEYS[1] at each claim. Pausing what is already paused keeps its first time, so a resent call changes nothing.
-- KEYS[1] paused        HASH  '*' (everything) or a type -> when it was paused (epoch ms)
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] scope         '*' or a type
-- Returns: {when the scope was paused (epoch ms), 1 if this call paused it or 0 if it already was}
-- include: clock.lua
local now = clock_ms(ARGV[1])
if redis.call('HSETNX', KEYS[1], ARGV[2], now) == 1 then return {now, 1} end
return {tonumber(redis.call('HGET', KEYS[1], ARGV[2])), 0}
