-- stage_schedule: one partition's part of a schedule call that spans several partitions, checked and set
-- aside where no reader looks (status, lists, stats and claims never read `staged`); commit_schedule.lua
-- makes it visible once every partition has staged its part. A part never committed (the call was refused
-- in another partition, or interrupted) expires after stage_ttl_ms. With an idempotency key the staged
-- part is named by the key, so a retry of an interrupted call finds it and gets the same ids back.
-- KEYS[1] sequence      STRING last sequence number handed out in this partition
-- KEYS[2] idempotency   STRING remembered answer for the caller's idempotency key (once committed)
-- KEYS[3] staged        HASH   this call's part: 'call' (JSON: fingerprint, due, created_at, ids, ...), 'payload'
-- KEYS[4] pending_by_creator HASH created_by -> notifications of theirs pending or processing
-- KEYS[5] ops           HASH   op id -> "<now> <last>" of each call that staged something, for the calls the
--                       caller's clock put in one time bucket; kept op_ttl_ms past its last write, so a
--                       retry of the same call (its reply was lost) answers it and stages nothing
-- KEYS[6] sealed        STRING the generation this partition was resharded into: once set, a call not seen
--                       before is refused with 'moved' (the caller sends it to that generation)
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] at_ms         due time, or '' to use delay_ms
-- ARGV[3] delay_ms      delay from now, used when at_ms is ''
-- ARGV[4] partitions    partition count: id = sequence * partitions + partition
-- ARGV[5] partition     this partition's index
-- ARGV[6] idem_ttl_ms   how long to remember the answer once committed; 0 when the call has no key
-- ARGV[7] fingerprint   digest of the request the idempotency key stands for
-- ARGV[8] stage_ttl_ms  how long the staged part waits for its commit before it expires
-- ARGV[9] payload       payload JSON shared by every recipient
-- ARGV[10] created_by   who scheduled it ('' for nobody)
-- ARGV[11] max_pending  most a creator may hold pending across partitions; 0: no cap checked here
-- ARGV[12] others       what the creator holds in the other partitions (read by the caller)
-- ARGV[13] priority     urgent, high, normal or low
-- ARGV[14] op_ttl_ms    how long the outcome is kept for retries of this call
-- ARGV[15] op_id        this call's field in ops
-- ARGV[16] recipients   this partition's recipients, space-separated (a recipient id has no spaces)
-- Returns: {'staged', due_ms, now_ms, resumed, id...} | {'replayed', due_ms, now_ms, id...}
--        | {'past', due_ms, now_ms} | {'conflict'} | {'over_quota', held, max_pending} | {'moved', generation}
--          resumed: 1 when the part was already staged by an earlier try of the same call, else 0
-- include: clock.lua
local partitions, partition = tonumber(ARGV[4]), tonumber(ARGV[5])
local _, spaces = string.gsub(ARGV[16], ' ', ' ')
local count = spaces + 1
local function staged_reply(due, now, resumed, last, n)
  local reply = {'staged', due, now, resumed}
  for i = 0, n - 1 do reply[#reply + 1] = (last - n + 1 + i) * partitions + partition end
  return reply
end

-- A retry resends the same ARGV, so the first run's now and last sequence number give back its due time and
-- ids: the same answer, and nothing staged twice.
local kept = redis.call('HGET', KEYS[5], ARGV[15])
local now
if kept then
  local first_now, last = string.match(kept, '^(%d+) (%d+)$')
  now = tonumber(first_now)
  return staged_reply(tonumber(ARGV[2]) or (now + tonumber(ARGV[3])), now, 0, tonumber(last), count)
end
now = clock_ms(ARGV[1])

local idem_ttl = tonumber(ARGV[6])
if idem_ttl > 0 then
  local seen = redis.call('GET', KEYS[2])
  if seen then
    local old = cjson.decode(seen)
    if old.fingerprint ~= ARGV[7] then return {'conflict'} end
    local reply = {'replayed', old.due, now}
    for _, id in ipairs(old.ids) do reply[#reply + 1] = id end
    return reply
  end
  local sealed = redis.call('GET', KEYS[6])
  if sealed then  -- a part staged before the seal is dropped: the whole call goes to the new generation
    redis.call('DEL', KEYS[3])
    return {'moved', tonumber(sealed)}
  end
  local staged = redis.call('HGET', KEYS[3], 'call')
  if staged then
    local call = cjson.decode(staged)
    if call.fingerprint ~= ARGV[7] then return {'conflict'} end
    redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[8]))
    local reply = {'staged', call.due, now, 1}
    for i = 0, call.count - 1 do reply[#reply + 1] = (call.last - call.count + 1 + i) * call.partitions + call.partition end
    return reply
  end
end

local sealed = redis.call('GET', KEYS[6])
if sealed then return {'moved', tonumber(sealed)} end
local due = tonumber(ARGV[2]) or (now + tonumber(ARGV[3]))
if due < now then return {'past', due, now} end

local creator = ARGV[10]
local max_pending = tonumber(ARGV[11])
if creator ~= '' and max_pending > 0 then
  local held = tonumber(redis.call('HGET', KEYS[4], creator) or '0') + tonumber(ARGV[12])
  if held + count > max_pending then return {'over_quota', held, max_pending} end
end
local last = redis.call('INCRBY', KEYS[1], count)
local call = {
  fingerprint = ARGV[7], due = due, created_at = now, creator = creator, priority = ARGV[13],
  idem_ttl = idem_ttl, last = last, count = count, partitions = partitions, partition = partition,
  recipients = ARGV[16],
}
redis.call('HSET', KEYS[3], 'call', cjson.encode(call), 'payload', ARGV[9])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[8]))
redis.call('HSET', KEYS[5], ARGV[15], string.format('%d %d', now, last))
redis.call('PEXPIRE', KEYS[5], ARGV[14])
return staged_reply(due, now, 0, last, count)
