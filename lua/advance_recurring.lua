-- advance_recurring: move a recurring schedule to its next occurrence and create that occurrence, atomically.
-- The caller (Python: Lua cannot read cron rules or time zones) computed the occurrence's time. Three moves:
--   create   a new schedule (definition given), with its first occurrence
--   advance  an active schedule whose pending occurrence is ARGV[4]: record it as fired, create the next
--   resume   a paused schedule: create the next occurrence
-- The occurrence is an ordinary pending notification, written as schedule.lua writes one (one recipient: its own
-- record; several: one pending call), due at its time or now, whichever is later.
-- Idempotent by the occurrence's time: advance applies only while the schedule's pending occurrence is still
-- ARGV[4], so a second worker (or a resent call) finds it moved on and creates nothing ('stale'); a resent
-- create finds its outcome in ops (or under its idempotency key). With next_ms '' the series is over: the
-- schedule is 'finished'.
-- A schedule's record (one field of KEYS[1]) is "<status> <next_ms> <count> <first_id> <definition>\n<payload>":
-- active, paused or finished; the time of its latest occurrence; how many occurrences were created; the first
-- notification id of the latest one; then what create wrote once (opaque here), which every move keeps as it is.
-- The replies carry the state alone (the first four fields).
-- KEYS[1] recurring          HASH   schedule id -> record, as above
-- KEYS[2] recurring_due      ZSET   active schedule id -> time of its pending occurrence (epoch ms)
-- KEYS[3] recurring_sequence STRING last schedule sequence number handed out in this partition
-- KEYS[4] due                ZSET   the due set of the occurrences' priority
-- KEYS[5] notifications      HASH   id -> payload JSON
-- KEYS[6] state              HASH   id -> state JSON
-- KEYS[7] by_recipient       ZSET   "<recipient> <id, 16 digits>" at score 0
-- KEYS[8] counters           HASH   lifetime totals
-- KEYS[9] sequence           STRING last notification sequence number handed out in this partition
-- KEYS[10] ops               HASH   op id -> schedule id of each create, kept op_ttl_ms past its last write
--                                 (or an idempotency key's: fingerprint -> schedule id, see ARGV[16])
-- KEYS[11..] as the call needs them, in this order:
--   by_creator, pending_by_creator, recurring_by_creator (ZSET "<created_by> <schedule id, 16 digits>")
--                                                          (with created_by)
--   calls, call_recipients, call_starts, call_pending, payload_refs                   (with several recipients)
-- ARGV[1] now_ms       '' for the server's TIME, or a pinned clock
-- ARGV[2] move         create, advance or resume
-- ARGV[3] schedule_id  the schedule ('' for create: one is handed out)
-- ARGV[4] fired_ms     advance: the occurrence being recorded as fired (must be the pending one)
-- ARGV[5] next_ms      the new occurrence's time, or '' when the series is over
-- ARGV[6] partitions   partition count: id = sequence * partitions + partition
-- ARGV[7] partition    this partition's index
-- ARGV[8] wakeup       channel told when the earliest due time moves earlier
-- ARGV[9] payload      the occurrences' payload JSON
-- ARGV[10] priority    urgent, high, normal or low
-- ARGV[11] op_ttl_ms   how long a create's outcome is kept for retries
-- ARGV[12] op_id       this create's field in ops ('' for advance and resume)
-- ARGV[13] recipients  space-separated, in order
-- ARGV[14] definition  create: the record's tail, "<definition JSON array>\n<payload JSON>" ('' otherwise)
-- ARGV[15] created_by  who owns the schedule ('' for nobody)
-- ARGV[16] keyed       create: 'key' when KEYS[10] is an idempotency key's hash (op_id: the request's fingerprint;
--                      op_ttl_ms: how long the key is remembered), so another request under that key is a
--                      conflict; '' when it is the ops bucket
-- Returns: {'created', schedule_id, state, now_ms} | {'replayed', schedule_id, state, now_ms}
--        | {'advanced', schedule_id, state, now_ms} | {'resumed', schedule_id, state, now_ms}
--        | {'finished', schedule_id, state, now_ms} | {'stale', schedule_id, state, now_ms} | {'missing'}
--        | {'conflict'}
-- include: clock.lua
local now = clock_ms(ARGV[1])
local move, sid = ARGV[2], ARGV[3]
local partitions, partition = tonumber(ARGV[6]), tonumber(ARGV[7])
local creator = ARGV[15]
local status, count = 'active', 0
local last_at, last_first, rest = '0', '0', ''  -- the latest occurrence's time and first id; the record's tail

if move == 'create' then
  local kept = redis.call('HGET', KEYS[10], ARGV[12])
  if kept then
    local record = redis.call('HGET', KEYS[1], kept)
    return {'replayed', kept, record and string.match(record, '^%a+ %d+ %d+ %d+') or 'finished 0 0 0', now}
  end
  if ARGV[16] == 'key' and redis.call('EXISTS', KEYS[10]) == 1 then return {'conflict'} end
  local seq = redis.call('INCR', KEYS[3])
  sid = string.format('%d', seq * partitions + partition)
  rest = ' ' .. ARGV[14]
  if creator ~= '' then redis.call('ZADD', KEYS[13], 0, creator .. ' ' .. string.format('%016d', tonumber(sid))) end
  redis.call('HSET', KEYS[10], ARGV[12], sid)
  redis.call('PEXPIRE', KEYS[10], ARGV[11])
else
  local current = redis.call('HGET', KEYS[1], sid)
  if not current then return {'missing'} end
  status, last_at, count, last_first, rest = string.match(current, '^(%a+) (%d+) (%d+) (%d+)(.*)$')
  if not status then return redis.error_reply('recurring schedule ' .. sid .. ' has an unreadable record') end
  count = tonumber(count)
  if (move == 'advance' and (status ~= 'active' or last_at ~= ARGV[4])) or (move == 'resume' and status ~= 'paused') then
    return {'stale', sid, string.format('%s %s %d %s', status, last_at, count, last_first), now}
  end
end

if ARGV[5] == '' then
  local state = string.format('finished %s %d %s', last_at, count, last_first)
  redis.call('HSET', KEYS[1], sid, state .. rest)
  redis.call('ZREM', KEYS[2], sid)
  return {'finished', sid, state, now}
end

-- The occurrence, as schedule.lua writes a call of these recipients due at this time.
local next_ms = tonumber(ARGV[5])
local due = math.max(next_ms, now)
local people = {}
for person in string.gmatch(ARGV[13], '%S+') do people[#people + 1] = person end
local n = #people
local last = redis.call('INCRBY', KEYS[9], n)
local first_id = (last - n + 1) * partitions + partition
local head = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')[2]
local k = 11
local by_creator, pending_by_creator
if creator ~= '' then by_creator, pending_by_creator, k = KEYS[11], KEYS[12], 14 end
local payload = ARGV[9]
if n == 1 then
  local id = string.format('%d', first_id)
  local digits = string.format('%016d', first_id)
  local st = '{"status":"pending","attempts":0,"scheduled_at":' .. string.format('%d', due)
    .. ',"created_at":' .. string.format('%d', now)
  if creator ~= '' then
    st = st .. ',"created_by":' .. cjson.encode(creator)
    redis.call('ZADD', by_creator, 0, creator .. ' ' .. digits)
  end
  if ARGV[10] ~= 'normal' then st = st .. ',"priority":' .. cjson.encode(ARGV[10]) end
  redis.call('ZADD', KEYS[7], 0, people[1] .. ' ' .. digits)
  redis.call('ZADD', KEYS[4], due, id)
  redis.call('HSET', KEYS[5], id, payload)
  redis.call('HSET', KEYS[6], id, st .. ',"recipient":' .. cjson.encode(people[1]) .. '}')
else
  local zrec, zcre = {}, {}
  for i = 0, n - 1 do
    local digits = string.format('%016d', first_id + i * partitions)
    zrec[#zrec + 1], zrec[#zrec + 2] = 0, people[i + 1] .. ' ' .. digits
    zcre[#zcre + 1], zcre[#zcre + 2] = 0, creator .. ' ' .. digits
    if #zrec >= 1000 or i == n - 1 then
      redis.call('ZADD', KEYS[7], unpack(zrec))
      if creator ~= '' then redis.call('ZADD', by_creator, unpack(zcre)) end
      zrec, zcre = {}, {}
    end
  end
  local cid = string.format('%d', first_id)
  redis.call('ZADD', KEYS[4], due, '-' .. cid)
  redis.call('HSET', KEYS[5], cid, payload)
  redis.call('HSET', KEYS[k], cid, string.format('%d %d %d 0 1 %s %s', due, now, n, ARGV[10], creator))
  redis.call('HSET', KEYS[k + 1], cid, ARGV[13])
  redis.call('ZADD', KEYS[k + 2], cid, cid)
  redis.call('INCRBY', KEYS[k + 3], n)
  redis.call('HSET', KEYS[k + 4], cid, n)
end
redis.call('HINCRBY', KEYS[8], 'scheduled', n)
if creator ~= '' then redis.call('HINCRBY', pending_by_creator, creator, n) end
if head == nil or due < tonumber(head) then redis.call('PUBLISH', ARGV[8], due) end

local state = string.format('active %d %d %d', next_ms, count + 1, first_id)
redis.call('HSET', KEYS[1], sid, state .. rest)
redis.call('ZADD', KEYS[2], next_ms, sid)
if move == 'create' then return {'created', sid, state, now} end
if move == 'resume' then return {'resumed', sid, state, now} end
return {'advanced', sid, state, now}
