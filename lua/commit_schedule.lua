-- commit_schedule: make a part staged by stage_schedule.lua visible, exactly as schedule.lua writes it, with
-- the ids, due time and creation time the stage handed out: one recipient gets its own record; several, one
-- pending call (payload and recipients once under the call id, in due once as "-<call id>", each recipient
-- only in by_recipient and by_creator until claim.lua gives it a record). The caller commits only after every
-- partition of the call staged its part, so a refused call shows nothing. With a collapse key, each recipient's
-- pending notification scheduled earlier with that key is collapsed here, as schedule.lua does.
-- KEYS[1] due           ZSET   the due set of the call's priority: id (or "-<call id>") -> due time (epoch ms)
-- KEYS[2] notifications HASH   id -> payload JSON (opaque here)
-- KEYS[3] state         HASH   id -> state JSON
-- KEYS[4] by_recipient  ZSET   "<recipient> <id, 16 digits>" at score 0, read by name
-- KEYS[5] counters      HASH   lifetime totals
-- KEYS[6] idempotency   STRING remembered answer for the caller's idempotency key
-- KEYS[7] by_creator    ZSET   "<created_by> <id, 16 digits>" at score 0, read by name
-- KEYS[8] pending_by_creator HASH created_by -> notifications of theirs pending or processing
-- KEYS[9] staged        HASH   the part stage_schedule.lua set aside; deleted here
-- KEYS[10] ops          HASH   op id -> "<due> <now> <first id> <count> <partitions>" of each call that
--                       committed, for the calls the caller's clock put in one time bucket; kept op_ttl_ms
--                       past its last write, so a retry of the same call answers it, not 'missing'
-- KEYS[11] calls        HASH   call id -> "<due> <created> <count> <next> <offset> <priority> <created_by>"
-- KEYS[12] call_recipients HASH call id -> its recipients, space-separated, in id order
-- KEYS[13] call_starts  ZSET   call id -> call id, to find a recipient's pending call from its id
-- KEYS[14] call_pending STRING recipients still pending inside calls (for the pending count)
-- KEYS[15] payload_refs HASH   call id -> records still using its payload (the payload goes with the last)
-- KEYS[16] sealed       STRING the generation this partition was resharded into: once set, a part not yet
--                       committed is refused with 'moved' (the caller schedules its recipients there)
-- KEYS[17..] with a collapse key (ARGV[5]): collapse, collapsed, due, due_urgent, due_high, due_low, calls,
--            call_recipients, call_starts, call_pending, pending_by_creator, as schedule.lua takes them: the
--            collapse index ("<recipient> <key>" -> newest id), the collapsed set (id -> purge time), and what
--            taking a pending one out needs (its due set, its call, its creator's pending count)
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] wakeup        channel told when the earliest due time moves earlier
-- ARGV[3] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[4] op_id         this call's field in ops
-- ARGV[5] collapse_key  '' for none
-- ARGV[6] keep_collapsed_ms how long a collapsed record is kept
-- Returns: {'created', due_ms, now_ms, id...} | {'replayed', due_ms, now_ms, id...} | {'missing'}
--        | {'moved', generation}
--          replayed: another try of the call committed it first; missing: the staged part expired; moved: the
--          partition was sealed by a reshard after the part was staged (the part is dropped)
-- include: clock.lua
local function created(due, now, first, count, step)
  local reply = {'created', due, now}
  for i = 0, count - 1 do reply[#reply + 1] = first + i * step end
  return reply
end
local kept = redis.call('HGET', KEYS[10], ARGV[4])  -- a retry of a call that already ran (its reply was lost)
if kept then
  local k = {}
  for v in string.gmatch(kept, '%d+') do k[#k + 1] = tonumber(v) end
  return created(k[1], k[2], k[3], k[4], k[5])
end

local now = clock_ms(ARGV[1])

-- include: calls.lua
-- include: collapse.lua

local staged = redis.call('HGET', KEYS[9], 'call')
if not staged then
  local seen = redis.call('GET', KEYS[6])
  if not seen then return {'missing'} end
  local old = cjson.decode(seen)
  local reply = {'replayed', old.due, now}
  for _, id in ipairs(old.ids) do reply[#reply + 1] = id end
  return reply
end
local sealed = redis.call('GET', KEYS[16])
if sealed then
  redis.call('DEL', KEYS[9])
  return {'moved', tonumber(sealed)}
end
local call = cjson.decode(staged)
local payload = redis.call('HGET', KEYS[9], 'payload')
local due, creator, count, partitions = call.due, call.creator, call.count, call.partitions
local first = (call.last - count + 1) * partitions + call.partition
-- The recipients as one space-separated string; a part staged before they were staged so is a JSON list.
local joined = call.recipients
if type(joined) == 'table' then joined = table.concat(joined, ' ') end
local people = {}
for person in string.gmatch(joined, '%S+') do people[#people + 1] = person end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]

-- Index entries go out in multi-member ZADD calls of up to 500 each, as schedule.lua writes them.
local ids, zrec, zcre = {}, {}, {}
local function flush_index()
  if #zrec == 0 then return end
  redis.call('ZADD', KEYS[4], unpack(zrec))
  if creator ~= '' then redis.call('ZADD', KEYS[7], unpack(zcre)) end
  zrec, zcre = {}, {}
end
for i = 0, count - 1 do
  local id = first + i * partitions
  local digits = string.format('%016d', id)
  ids[i + 1] = id
  local n = #zrec
  zrec[n + 1], zrec[n + 2] = 0, people[i + 1] .. ' ' .. digits
  zcre[n + 1], zcre[n + 2] = 0, creator .. ' ' .. digits
  if n + 2 >= 1000 then flush_index() end
end
flush_index()
local cid = string.format('%d', first)
if count == 1 then
  local state = '{"status":"pending","attempts":0,"scheduled_at":' .. string.format('%d', due)
    .. ',"created_at":' .. string.format('%d', call.created_at)
  if creator ~= '' then state = state .. ',"created_by":' .. cjson.encode(creator) end
  if call.priority ~= 'normal' then state = state .. ',"priority":' .. cjson.encode(call.priority) end
  redis.call('ZADD', KEYS[1], due, cid)
  redis.call('HSET', KEYS[2], cid, payload)
  redis.call('HSET', KEYS[3], cid, state .. ',"recipient":' .. cjson.encode(people[1]) .. '}')
else
  redis.call('ZADD', KEYS[1], due, '-' .. cid)
  redis.call('HSET', KEYS[2], cid, payload)
  redis.call('HSET', KEYS[11], cid,
    string.format('%d %d %d 0 1 %s %s', due, call.created_at, count, call.priority, creator))
  redis.call('HSET', KEYS[12], cid, joined)
  redis.call('ZADD', KEYS[13], cid, cid)
  redis.call('INCRBY', KEYS[14], count)
  redis.call('HSET', KEYS[15], cid, count)
end
redis.call('HINCRBY', KEYS[5], 'scheduled', count)
if creator ~= '' then redis.call('HINCRBY', KEYS[8], creator, count) end
if ARGV[5] ~= '' then collapse(17, people, count, first, partitions, ARGV[5], ARGV[6]) end
if head == nil or due < tonumber(head) then redis.call('PUBLISH', ARGV[2], due) end
if call.idem_ttl > 0 then
  redis.call('SET', KEYS[6], cjson.encode({fingerprint = call.fingerprint, due = due, ids = ids}), 'PX', call.idem_ttl)
end
redis.call('DEL', KEYS[9])
redis.call('HSET', KEYS[10], ARGV[4], string.format('%d %d %d %d %d', due, now, first, count, partitions))
redis.call('PEXPIRE', KEYS[10], ARGV[3])
return created(due, now, first, count, partitions)
