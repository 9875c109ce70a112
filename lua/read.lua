-- read: the stored state and payload of notifications, for status and lists. Changes nothing.
-- A recipient still pending inside a many-recipient call has no record of its own yet: its state is made
-- here from the call (status pending, attempts 0), as claim.lua would first write it.
-- KEYS[1] state         HASH  id -> state JSON
-- KEYS[2] notifications HASH  id -> payload JSON (a call's under the call id)
-- KEYS[3] calls         HASH  call id -> "<due> <created> <count> <next> <offset> <priority> <created_by>"
-- KEYS[4] call_recipients HASH call id -> its recipients, space-separated, in id order
-- KEYS[5] call_starts   ZSET  call id -> call id
-- KEYS[6] by_recipient  ZSET  "<recipient> <id, 16 digits>": one missing from it was purged
-- ARGV[1] partitions    partition count: a call's recipients have ids call id + i * partitions
-- ARGV[2..] ids         notifications to read
-- Returns: {state JSON or false, payload JSON or false, ...}, a pair per id, in order (false: unknown)
local partitions = tonumber(ARGV[1])

-- The pending state of `id` inside the pending call holding it, and the call id; nil when none does.
-- Each call's fields and recipients are read and split once per run: a list reads many ids of one call.
local calls = {}
local function call_of(cid)
  local call = calls[cid]
  if call == nil then
    call = false
    local header = redis.call('HGET', KEYS[3], cid)
    if header then
      local at, created, count, nxt, _, priority, creator =
        string.match(header, '^(%d+) (%d+) (%d+) (%d+) (%d+) (%S+) ?(%S*)$')
      local people = {}
      for person in string.gmatch(redis.call('HGET', KEYS[4], cid) or '', '%S+') do people[#people + 1] = person end
      local tail = ',"scheduled_at":' .. at .. ',"created_at":' .. created .. ',"call":' .. cid
      if creator ~= '' then tail = tail .. ',"created_by":' .. cjson.encode(creator) end
      if priority ~= 'normal' then tail = tail .. ',"priority":"' .. priority .. '"' end
      call = {count = tonumber(count), nxt = tonumber(nxt), people = people, tail = tail .. '}'}
    end
    calls[cid] = call
  end
  return call
end
local function in_call(id)
  local found = redis.call('ZRANGE', KEYS[5], id, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, 1)
  if #found == 0 then return nil end
  local cid = found[1]
  local call = call_of(cid)
  if not call then return nil end
  local i = (tonumber(id) - tonumber(cid)) / partitions
  if i ~= math.floor(i) or i < call.nxt or i >= call.count then return nil end
  local person = call.people[i + 1]
  if not redis.call('ZSCORE', KEYS[6], person .. ' ' .. string.format('%016d', tonumber(id))) then return nil end
  return '{"status":"pending","attempts":0,"recipient":' .. cjson.encode(person) .. call.tail, cid
end

local reply = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local state = redis.call('HGET', KEYS[1], id)
  local holder = id
  if state then
    holder = string.match(state, '"call":(%d+)') or id
  else
    state, holder = in_call(id)
  end
  reply[#reply + 1] = state or false
  reply[#reply + 1] = holder and redis.call('HGET', KEYS[2], holder) or false
end
return reply
