-- reserve_template: read one version of a template for a schedule call and mark it in use by that call, in one
-- step, so a delete cannot slip between the read and the notifications it would leave without a template.
-- The reservation lapses at now + hold_ms; the call replaces it with its notification ids once scheduled.
-- Running it twice only renews the same reservation.
-- KEYS[1] names         HASH  template name -> its latest version
-- KEYS[2] versions      HASH  version -> that version's JSON (this template's)
-- KEYS[3] uses          ZSET  what may still use the template -> its due time, or when a reservation lapses
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] name          the template's name
-- ARGV[3] version       the version wanted, '' for the latest
-- ARGV[4] member        the reservation's member ("r:<op id>")
-- ARGV[5] hold_ms       how long the reservation holds without being replaced
-- Returns: {version, version JSON}, or {0, ''} when there is no such template (or version)
-- include: clock.lua
local now = clock_ms(ARGV[1])
local version = ARGV[3]
if version == '' then version = redis.call('HGET', KEYS[1], ARGV[2]) end
local body = version and redis.call('HGET', KEYS[2], version)
if not body then return {0, ''} end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[4])
return {tonumber(version), body}
