-- rate_limit: take one request's cost from a caller's token bucket, refilled continuously.
-- KEYS[1] bucket        HASH  tokens (float, as text), at (epoch ms of the last refill)
-- KEYS[2] op            STRING this call's verdict, so a retry of the same call is not charged again
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] rate_per_s    tokens added per second
-- ARGV[3] burst         bucket capacity (a full bucket allows this many requests at once)
-- ARGV[4] cost          tokens this request takes; 0 only looks: allowed while one token is left, nothing written
-- ARGV[5] op_ttl_ms     how long the verdict is kept for retries of this call
-- Returns: {1, tokens left (floored), 0} when allowed | {0, 0, ms until enough tokens} when limited
-- include: clock.lua
-- include: outcome.lua
local kept = redis.call('GET', KEYS[2])  -- a retry of a call that already ran (its reply was lost)
if kept then return kept_numbers(kept) end

local now = clock_ms(ARGV[1])
local rate, burst, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

local saved = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(saved[1]), tonumber(saved[2])
if not tokens or not at then
  tokens, at = burst, now
end
-- a clock that went backwards (another server, a pinned test clock) must not drain the bucket
local elapsed_ms = math.max(0, now - at)
tokens = math.min(burst, tokens + elapsed_ms * rate / 1000)

local need = math.max(cost, 1)
local allowed = tokens >= need
if allowed then tokens = tokens - cost end
if cost > 0 then  -- a look (cost 0) writes nothing
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
end
local reply = {0, 0, math.ceil((need - tokens) / rate * 1000)}
if allowed then reply = {1, math.floor(tokens), 0} end
if cost > 0 then keep(KEYS[2], ARGV[5], reply) end
return reply
