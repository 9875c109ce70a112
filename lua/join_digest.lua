-- join_digest: a claimed notification with a digest_key joins its recipient's open digest for that key (or
-- opens one), or, once that digest is due (its window closed or it is full), takes every member still waiting
-- so one delivery carries them all.
-- A digest's id is its first member's; it closes at that member's due time + window_ms. A member joins while
-- it is open and the member's own due time is not after its close, else it opens the next one. A held member
-- is pending again (its attempt uncounted), not leased, and due at the digest's close, so a worker that dies
-- loses nothing and cancel, pause and expiry treat it as any pending one; the claim of any member at or after
-- the close (or the join that fills the digest) flushes it: every member still waiting, whose own due time has
-- come (and whose expires_at has not), moves to processing under this call's lease, and the reply carries them.
-- A member claimed by another worker meanwhile is taken too; that worker's own call then answers 'busy' and it
-- leaves the member alone.
-- After a failed flush its members are retried as usual and their next claim flushes the digest again.
-- The digest key is per digest, known only from the member's state or the open pointer, so it is built here:
-- KEYS[9] .. id (the prefix carries the partition's hash tag, as every key of this call does).
-- KEYS[1] state         HASH  id -> state JSON
-- KEYS[2] processing    ZSET  id -> lease deadline (epoch ms)
-- KEYS[3] notifications HASH  id -> payload JSON (a call's recipients share the one under the call's id)
-- KEYS[4] due           ZSET  normal id -> due time (epoch ms)
-- KEYS[5] due_urgent    ZSET  urgent id -> due time (epoch ms)
-- KEYS[6] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[7] due_low       ZSET  low id -> due time (epoch ms)
-- KEYS[8] open          STRING the id of the digest open for this recipient and digest key
-- KEYS[9] digest_prefix HASH key prefix: KEYS[9] .. id is digest id's record (close, max, members, holder, ...)
-- KEYS[10] op           STRING this call's outcome, so a retry of the same call answers it again
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] id            the claimed notification
-- ARGV[3] window_ms     how long a digest it opens stays open after its own due time
-- ARGV[4] max           most members of a digest it opens (full: flushed at once)
-- ARGV[5] lease_ms      the lease a flush takes its members under
-- ARGV[6] keep_ms       how long a digest's record outlives its close, and each flush (retries find it)
-- ARGV[7] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[8] wakeup        channel told when a digest opens (its close is a new due time)
-- Returns: {'held', digest id, close_ms} | {'flush', digest id, close_ms, id, state JSON, payload JSON, ...}
--          | {'busy', digest id} | {'gone', current status}
--          held: it waits in the digest; flush: these members (this one among them) are this call's to send, as
--          one; busy: another worker's flush of the digest carries it; gone: it is no longer this claim's
-- include: clock.lua
local function reply_flush(digest, close, ids)
  local reply = {'flush', digest, close}
  for _, id in ipairs(ids) do
    local raw = redis.call('HGET', KEYS[1], id) or '{}'
    local call = string.match(raw, '"call":(%d+)')
    reply[#reply + 1] = id
    reply[#reply + 1] = raw
    reply[#reply + 1] = redis.call('HGET', KEYS[3], call or id) or '{}'
  end
  return reply
end

local kept = redis.call('GET', KEYS[10])
if kept then  -- a retry of a call that already ran (its reply was lost): the same outcome, read again
  local parts = {}
  for v in string.gmatch(kept, '[^ ]+') do parts[#parts + 1] = v end
  if parts[1] == 'held' then return {'held', parts[2], tonumber(parts[3])} end
  return reply_flush(parts[2], tonumber(parts[3]), {unpack(parts, 4)})
end

local now = clock_ms(ARGV[1])
local id = ARGV[2]
local dues = {urgent = KEYS[5], high = KEYS[6], low = KEYS[7]}  -- no priority in the state: normal
local function due_of(st) return dues[st.priority] or KEYS[4] end

local raw = redis.call('HGET', KEYS[1], id)
if not raw then return {'gone', 'missing'} end
local st = cjson.decode(raw)
if st.status ~= 'processing' then return {'gone', st.status} end  -- sent, cancelled, or reaped and due again

local function count(members)  -- how many ids a space-separated list holds
  local _, n = string.gsub(members or '', '%d+', '')
  return n
end
local function fields(key)
  local list = redis.call('HGETALL', key)
  if #list == 0 then return nil end
  local f = {}
  for i = 1, #list, 2 do f[list[i]] = list[i + 1] end
  return f
end

-- Hold this member: pending again, due at the digest's close, its claim's attempt given back.
local function hold(digest, close)
  st.status = 'pending'
  st.lease_until = nil
  st.attempts = math.max(0, (tonumber(st.attempts) or 1) - 1)
  st.digest = tonumber(digest)
  redis.call('HSET', KEYS[1], id, cjson.encode(st))
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', due_of(st), close, id)
  redis.call('SET', KEYS[10], 'held ' .. digest .. ' ' .. string.format('%d', close), 'PX', ARGV[7])
  return {'held', digest, close}
end

-- Whether waiting member `m` is past its expires_at: a full digest goes before its close, and such a member stays
-- due for claim.lua to expire there. The payload is read here, never written back.
local function expired(m, member)
  local ok, body = pcall(cjson.decode, redis.call('HGET', KEYS[3], m.call and string.format('%d', m.call) or member))
  return ok and type(body) == 'table' and tonumber(body.expires_at) ~= nil and now >= tonumber(body.expires_at)
end

-- Send digest `digest` now: every member still waiting (or claimed) whose own due time has come is this call's.
local function flush(digest, key, f)
  local deadline = now + tonumber(ARGV[5])
  redis.call('HSET', key, 'closed', '1')
  if redis.call('GET', KEYS[8]) == digest then redis.call('DEL', KEYS[8]) end
  -- The first flush takes the members due by the close; a later one (after a failure, or a worker that died
  -- sending it) exactly those the last one took, whose retries moved their due times.
  local again, close = f.taken ~= nil, tonumber(f.close)
  local taken = {}
  for member in string.gmatch((again and f.taken or f.members) or '', '%d+') do
    local mraw = redis.call('HGET', KEYS[1], member)
    local ok, m = false, nil
    if mraw then ok, m = pcall(cjson.decode, mraw) end
    if ok and type(m) == 'table' and tonumber(m.digest) == tonumber(digest) and tonumber(m.scheduled_at)
      and (again or m.scheduled_at <= close) then
      local take = m.status == 'processing'
      if m.status == 'pending' and m.scheduled_at <= now
        and redis.call('ZSCORE', due_of(m), member) and not expired(m, member) then  -- waiting in the digest
        redis.call('ZREM', due_of(m), member)
        m.attempts = (tonumber(m.attempts) or 0) + 1
        take = true
      end
      if take then
        m.status = 'processing'
        m.lease_until = deadline
        redis.call('HSET', KEYS[1], member, cjson.encode(m))
        redis.call('ZADD', KEYS[2], deadline, member)
        taken[#taken + 1] = member
      end
    end
  end
  local list = table.concat(taken, ' ')
  redis.call('HSET', key, 'holder', KEYS[10], 'until', string.format('%d', deadline), 'taken', list)
  redis.call('PEXPIRE', key, tonumber(ARGV[6]))
  redis.call('SET', KEYS[10], 'flush ' .. digest .. ' ' .. f.close .. ' ' .. list, 'PX', ARGV[7])
  return reply_flush(digest, close, taken)
end

-- A member that names a digest whose record still exists: flush it if due, else hold it there again (a
-- reschedule or an expired lease took it out of the digest before its close). One the digest no longer counts
-- on (rescheduled past its close, or due again after it went without it) is a new member of the open one, below.
local digest = st.digest and string.format('%d', st.digest)
local f = digest and fields(KEYS[9] .. digest)
local taken_here = f and string.find(' ' .. (f.taken or '') .. ' ', ' ' .. id .. ' ', 1, true)
if f and (taken_here or not f.closed and st.scheduled_at <= tonumber(f.close)) then
  local close = tonumber(f.close)
  if not (f.closed or now >= close or count(f.members) >= tonumber(f.max)) then return hold(digest, close) end
  if f.holder and f.holder ~= KEYS[10] and tonumber(f['until']) > now then return {'busy', digest} end
  return flush(digest, KEYS[9] .. digest, f)
end

-- Join the open digest for this recipient and key, or open the next one (this member's id is its id).
local open = redis.call('GET', KEYS[8])
local of = open and fields(KEYS[9] .. open)
if not (of and not of.closed and st.scheduled_at <= tonumber(of.close)) then
  open = id
  local close = st.scheduled_at + tonumber(ARGV[3])
  of = {close = string.format('%d', close), max = ARGV[4], members = ''}
  redis.call('HSET', KEYS[9] .. open, 'close', of.close, 'max', of.max)
  local ttl = math.max(1, close - now) + tonumber(ARGV[6])
  redis.call('PEXPIRE', KEYS[9] .. open, ttl)
  redis.call('SET', KEYS[8], open, 'PX', ttl)
  redis.call('PUBLISH', ARGV[8], of.close)  -- a new due time: a worker asleep past it wakes and learns it
end
local members = of.members == '' and id or of.members .. ' ' .. id
redis.call('HSET', KEYS[9] .. open, 'members', members)
of.members = members
st.digest = tonumber(open)
redis.call('HSET', KEYS[1], id, cjson.encode(st))
local close = tonumber(of.close)
if now >= close or count(members) >= tonumber(of.max) then
  return flush(open, KEYS[9] .. open, of)
end
return hold(open, close)
