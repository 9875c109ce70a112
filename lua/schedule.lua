-- schedule: create pending notifications for recipients, all due at one time, in one partition.
-- One recipient: its own record (state and payload under its id), in due under its id.
-- Several: one pending call. The payload is stored once under the call id (the first recipient's id; the
-- others follow as id + i * partitions), the recipients once as a space-separated list, and the call sits
-- in due once, as "-<call id>". Each recipient costs only its by_recipient (and by_creator) entry until
-- claim.lua gives it a record of its own; cancel.lua and reschedule.lua do so earlier, for that one alone.
-- Workers are woken when the new entry goes before the head of its own due set. The other sets' heads need
-- no look: each was announced when it became a head, so the workers already wake by then; a head that a
-- claim or cancel took away only makes them wake early, and a new entry before its own set's head but
-- after another set's costs one spurious wakeup, never a missed one.
-- With a collapse key, each recipient's newest notification scheduled with that key is found in the collapse
-- index; one still pending is marked collapsed here (taken out of due, or given a record of its own when it
-- waits inside a call, which claim.lua then passes over), in the same atomic step that creates its successor.
-- Only what a call uses is passed (each key and argument is work for the client), so after the fixed seven
-- KEYS come those its options and recipients need, in the order listed.
-- KEYS[1] due           ZSET   the due set of the call's priority: id (or "-<call id>") -> due time (epoch ms)
-- KEYS[2] notifications HASH   id -> payload JSON (opaque here)
-- KEYS[3] state         HASH   id -> state JSON
-- KEYS[4] by_recipient  ZSET   "<recipient> <id, 16 digits>" at score 0, read by name
-- KEYS[5] counters      HASH   lifetime totals
-- KEYS[6] sequence      STRING last sequence number handed out in this partition
-- KEYS[7] ops           HASH   op id -> "<now> <last>" of each call that created something, for the calls
--                       the caller's clock put in one time bucket; kept op_ttl_ms past its last write, so
--                       a retry of the same call (its reply was lost) answers it and creates nothing
-- KEYS[8..] as the call needs them:
--   idempotency        STRING remembered answer for the idempotency key      (with idem_ttl_ms)
--   by_creator         ZSET   "<created_by> <id, 16 digits>" at score 0       (with created_by)
--   pending_by_creator HASH   created_by -> their notifications pending or processing (with created_by)
--   calls              HASH   call id -> "<due> <created> <count> <next> <offset> <priority> <created_by>"
--                             while some of its recipients are still pending  (with several recipients)
--   call_recipients    HASH   call id -> its recipients, space-separated, in id order (several recipients)
--   call_starts        ZSET   call id -> call id, to find a recipient's pending call (several recipients)
--   call_pending       STRING recipients still pending inside calls           (with several recipients)
--   payload_refs       HASH   call id -> records still using its payload      (with several recipients)
--   collapse, collapsed, due, due_urgent, due_high, due_low, calls, call_recipients, call_starts,
--   call_pending, pending_by_creator                                          (with collapse_key)
--   sealed             STRING the generation a reshard moved this partition to (always, the last key): once
--                             set, a call not seen before is refused with 'moved' (the caller resends it there)
--                             the collapse index ("<recipient> <key>" -> newest id), the collapsed set (id ->
--                             purge time), and what taking a pending one out needs (its due set, its call,
--                             its creator's pending count)
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] at_ms         due time, or '' to use delay_ms
-- ARGV[3] delay_ms      delay from now, used when at_ms is ''
-- ARGV[4] partitions    partition count: id = sequence * partitions + partition
-- ARGV[5] partition     this partition's index
-- ARGV[6] wakeup        channel told when the earliest due time moves earlier
-- ARGV[7] payload       payload JSON shared by every recipient
-- ARGV[8] priority      urgent, high, normal or low: kept in the state (unless normal) or in the call
-- ARGV[9] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[10] op_id        this call's field in ops
-- ARGV[11] recipients   space-separated (a recipient id has no spaces), in id order
-- ARGV[12..] options, as name, value pairs, each given only when it applies:
--   idem_ttl_ms, fingerprint         an idempotency key's: how long to remember the answer, and the digest of
--                                    the request it stands for
--   created_by, max_pending, others  who scheduled it (indexed in by_creator, kept in the state), the most
--                                    they may hold pending across partitions (0: not checked here), and what
--                                    they hold in the other partitions (read by the caller)
--   collapse_key, keep_collapsed_ms  the call's collapse key, and how long a collapsed record is kept
-- Returns: {'created', due_ms, now_ms, id...} | {'replayed', due_ms, now_ms, id...}
--        | {'past', due_ms, now_ms} | {'conflict'} | {'over_quota', held, max_pending} | {'moved', generation}
-- include: clock.lua
local partitions, partition = tonumber(ARGV[4]), tonumber(ARGV[5])
local option = {}
for i = 12, #ARGV, 2 do option[ARGV[i]] = ARGV[i + 1] end
local people, count = ARGV[11], 1
if string.find(people, ' ', 1, true) then
  people = {}
  for person in string.gmatch(ARGV[11], '%S+') do people[#people + 1] = person end
  count = #people
end

-- A retry resends the same ARGV, so the first run's now and last sequence number give back its due time and
-- ids: the same answer, and nothing created twice.
local kept = redis.call('HGET', KEYS[7], ARGV[10])
local now, last
if kept then
  now, last = string.match(kept, '^(%d+) (%d+)$')
  now, last = tonumber(now), tonumber(last)
else
  now = clock_ms(ARGV[1])
end
local due = tonumber(ARGV[2]) or (now + tonumber(ARGV[3]))
local reply = {'created', due, now}
local first_id
if kept then
  first_id = (last - count + 1) * partitions + partition
  for i = 0, count - 1 do reply[4 + i] = first_id + i * partitions end
  return reply
end

local k = 8  -- the next optional key
local idem_ttl = tonumber(option.idem_ttl_ms or '0')
local idempotency
if idem_ttl > 0 then
  idempotency, k = KEYS[k], k + 1
  local seen = redis.call('GET', idempotency)
  if seen then
    local old = cjson.decode(seen)
    if old.fingerprint ~= option.fingerprint then return {'conflict'} end
    local replayed = {'replayed', old.due, now}
    for _, id in ipairs(old.ids) do replayed[#replayed + 1] = id end
    return replayed
  end
end

local sealed = redis.call('GET', KEYS[#KEYS])
if sealed then return {'moved', tonumber(sealed)} end
if due < now then return {'past', due, now} end

local creator = option.created_by or ''
local by_creator, pending_by_creator
if creator ~= '' then
  by_creator, pending_by_creator, k = KEYS[k], KEYS[k + 1], k + 2
  local max_pending = tonumber(option.max_pending)
  if max_pending > 0 then
    local held = tonumber(redis.call('HGET', pending_by_creator, creator) or '0') + tonumber(option.others)
    if held + count > max_pending then return {'over_quota', held, max_pending} end
  end
end
last = redis.call('INCRBY', KEYS[6], count)
first_id = (last - count + 1) * partitions + partition
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]

-- include: calls.lua
-- include: collapse.lua

local payload = ARGV[7]
if count == 1 then
  local id = string.format('%d', first_id)
  local digits = string.format('%016d', first_id)
  reply[4] = first_id
  local state = '{"status":"pending","attempts":0,"scheduled_at":' .. string.format('%d', due)
    .. ',"created_at":' .. string.format('%d', now)
  if creator ~= '' then
    state = state .. ',"created_by":' .. cjson.encode(creator)
    redis.call('ZADD', by_creator, 0, creator .. ' ' .. digits)
  end
  if ARGV[8] ~= 'normal' then state = state .. ',"priority":' .. cjson.encode(ARGV[8]) end
  redis.call('ZADD', KEYS[4], 0, people .. ' ' .. digits)
  redis.call('ZADD', KEYS[1], due, id)
  redis.call('HSET', KEYS[2], id, payload)
  redis.call('HSET', KEYS[3], id, state .. ',"recipient":' .. cjson.encode(people) .. '}')
else
  -- Index entries go out in multi-member ZADD calls of up to 500 each: one redis.call per recipient per key
  -- was most of this script's cost for many-recipient calls.
  local zrec, zcre = {}, {}
  local function flush_index()
    if #zrec == 0 then return end
    redis.call('ZADD', KEYS[4], unpack(zrec))
    if creator ~= '' then redis.call('ZADD', by_creator, unpack(zcre)) end
    zrec, zcre = {}, {}
  end
  for i = 0, count - 1 do
    local id = first_id + i * partitions
    local digits = string.format('%016d', id)
    reply[4 + i] = id
    local n = #zrec
    zrec[n + 1], zrec[n + 2] = 0, people[i + 1] .. ' ' .. digits
    zcre[n + 1], zcre[n + 2] = 0, creator .. ' ' .. digits
    if n + 2 >= 1000 then flush_index() end
  end
  flush_index()
  local cid = string.format('%d', first_id)
  redis.call('ZADD', KEYS[1], due, '-' .. cid)
  redis.call('HSET', KEYS[2], cid, payload)
  redis.call('HSET', KEYS[k], cid, string.format('%d %d %d 0 1 %s %s', due, now, count, ARGV[8], creator))
  redis.call('HSET', KEYS[k + 1], cid, ARGV[11])
  redis.call('ZADD', KEYS[k + 2], cid, cid)
  redis.call('INCRBY', KEYS[k + 3], count)
  redis.call('HSET', KEYS[k + 4], cid, count)
end
redis.call('HINCRBY', KEYS[5], 'scheduled', count)
if creator ~= '' then redis.call('HINCRBY', pending_by_creator, creator, count) end
if option.collapse_key then
  collapse(count > 1 and k + 5 or k, people, count, first_id, partitions, option.collapse_key, option.keep_collapsed_ms)
end

if head == nil or due < tonumber(head) then
  redis.call('PUBLISH', ARGV[6], due)
end
if idem_ttl > 0 then
  local ids = {}
  for i = 4, #reply do ids[i - 3] = reply[i] end
  redis.call('SET', idempotency, cjson.encode({fingerprint = option.fingerprint, due = due, ids = ids}), 'PX', idem_ttl)
end
redis.call('HSET', KEYS[7], ARGV[10], string.format('%d %d', now, last))
redis.call('PEXPIRE', KEYS[7], ARGV[9])
return reply
