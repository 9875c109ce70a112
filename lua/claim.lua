-- claim: move up to `limit` due notifications into processing under a lease, counting the attempt.
-- Higher priorities go first: every due urgent one, then high, normal, low; within one, the earliest due.
-- A due "-<call id>" member is a many-recipient call: its next recipients get records of their own here
-- (built by concatenation, no JSON decoded), skipping any that a cancel or reschedule already gave one; the
-- call leaves due once its last recipient is claimed.
-- With ARGV[6] set, a claimed notification whose only channel is the websocket (it names ["websocket"], or
-- none while ARGV[6] is 'all') is delivered here instead of leaving in processing: its message (the JSON
-- Delivered.of writes, spliced from the stored payload's members, never decoded) is appended to the
-- recipient's inbox and PUBLISHed with its stream id as publish_inbox.lua does, and it is marked sent as
-- ack.lua would. One whose payload names a template is claimed as usual: the worker renders it; so is one
-- naming a digest_key: the worker joins it to its digest (join_digest.lua). A record
-- this script cannot vouch for (not as zsched writes it) is claimed as usual, so the worker decodes it and
-- fails it with the reason.
-- Expiry is decided here, so an expired notification never reaches a channel (this script's inbox path
-- included): one claimed at or after its payload's expires_at, or (on_late skip) more than its late_after_ms
-- past its scheduled_at, is marked expired instead (no attempt counted, its creator's pending count released)
-- and counts against `limit` like one claimed, so a claim's work stays bounded. The payload's members are
-- delimited only when it names one of them, once per payload (a call's recipients share theirs).
-- Pauses are honoured here, so no worker hands out a paused notification (this script's inbox path included):
-- with KEYS[18] naming '*' nothing is claimed; a notification whose type it names leaves due for KEYS[19]
-- ("<priority> <member>" -> its due time) and counts against `limit`, so each is passed over once, not at
-- every claim; resume.lua puts those back. A record found due in a terminal status (one cancelled or
-- collapsed while parked, back on resume) is dropped from due, not claimed.
-- Per-recipient limits (ARGV[14]) are counted here, once per notification of a limited type that this claim
-- sends or claims; one over its limit is deferred instead (its own record, still pending, due at the window's
-- end) or, under a limit that drops, ends throttled (as expired ones do); no attempt is counted, and it counts
-- against `limit`. Types with no limit cost nothing more.
-- A call whose payload has spread_ms spreads its recipients evenly over that window after its due time: the
-- k-th of n is due spread_ms * k / n later (its scheduled_at says so), and the call's due entry moves to its
-- next recipient's time, so a huge fan-out leaves due a slice at a time.
-- Opt-outs are the worker's to apply: a recipient in KEYS[22] (with an opt-out of the websocket, or of every
-- channel) gets nothing delivered here; their notification is claimed as usual (a claim sent ahead stops at it).
-- That costs one SCARD per claim, and a set lookup per notification only while the set is not empty.
-- An inbox key is per recipient, known only once claimed, so it is built here: KEYS[16] .. recipient. The
-- prefix carries the partition's hash tag, as every key of this call does, so the script stays in one slot.
-- KEYS[1] due           ZSET  normal id -> due time (epoch ms)
-- KEYS[2] processing    ZSET  id -> lease deadline (epoch ms)
-- KEYS[3] notifications HASH  id -> payload JSON
-- KEYS[4] state         HASH  id -> state JSON
-- KEYS[5] counters      HASH  lifetime totals
-- KEYS[6] due_urgent    ZSET  urgent id -> due time (epoch ms)
-- KEYS[7] due_high      ZSET  high id -> due time (epoch ms)
-- KEYS[8] due_low       ZSET  low id -> due time (epoch ms)
-- KEYS[9] calls        HASH  call id -> "<due> <created> <count> <next> <offset> <priority> <created_by>"
-- KEYS[10] call_recipients HASH call id -> its recipients, space-separated, in id order
-- KEYS[11] call_starts  ZSET  call id -> call id
-- KEYS[12] call_pending STRING recipients still pending inside calls
-- KEYS[13] by_recipient ZSET  "<recipient> <id, 16 digits>": a recipient purged from it was cancelled or
--                       rescheduled alone and its record purged, so its call must not hand it out again
-- KEYS[14] sent          ZSET  id -> time its record is purged (epoch ms)
-- KEYS[15] pending_by_creator HASH created_by -> notifications of theirs pending or processing
-- KEYS[16] inbox_prefix  STREAM key prefix: KEYS[16] .. recipient is the recipient's inbox
-- KEYS[17] expired       ZSET  id -> time its record is purged (epoch ms)
-- KEYS[18] paused       HASH  '*' (everything) or a type -> when it was paused (epoch ms)
-- KEYS[19] parked       ZSET  "<priority> <member>" of a due set -> its due time (epoch ms), while its type is paused
-- KEYS[20] rate_prefix  HASH key prefix: KEYS[20] .. <window index> .. ':' .. <type> counts, per recipient, what
--                       was delivered or claimed of that type in that window (ARGV[14])
-- KEYS[21] throttled    ZSET  id -> time its record is purged (epoch ms): those over a limit that drops
-- KEYS[22] websocket_opt_outs SET recipients with an opt-out of the websocket (or of every channel)
-- KEYS[23] op            STRING this call's outcome (the ids it sent and claimed), so a retry of the same
--                       call gets the same batch instead of claiming another and stranding the first, and
--                       appends and publishes nothing again
-- ARGV[1] now_ms        '' for the server's TIME, or a pinned clock
-- ARGV[2] limit         most notifications to claim
-- ARGV[3] lease_ms      how long the claimer owns them before reap hands them to another worker
-- ARGV[4] op_ttl_ms     how long the outcome is kept for retries of this call
-- ARGV[5] partitions    partition count: a call's recipients have ids call id + i * partitions
-- ARGV[6] inbox         '' to deliver nothing here; 'named': those naming ["websocket"]; 'all': those too
--                       that name no channel (the worker's default channels are the websocket alone)
-- ARGV[7] keep_sent_ms  how long a sent record is kept
-- ARGV[8] inbox_maxlen  approximate cap on each inbox stream
-- ARGV[9] inbox_keep_ms inbox retention: older entries are trimmed, an idle inbox expires after it
-- ARGV[10] user_prefix  channel prefix: ARGV[10] .. recipient is the recipient's live channel
-- ARGV[11] keep_expired_ms how long an expired record is kept
-- ARGV[12] take_rest    '1': one not delivered here is claimed under the lease; '0': the claim stops at the
--                       first such one in claim order, leaving it and what follows due (a claim sent ahead
--                       of the worker's need then holds nothing it must deliver)
-- ARGV[13] publish      'SPUBLISH' on a Redis Cluster (sharded pub/sub), anything else PUBLISH
-- ARGV[14] limits       '' or JSON {type: [most per recipient per window, window_ms, 'defer' or 'drop']}: a
--                       notification of such a type beyond its recipient's count in the current window (windows
--                       are whole multiples of window_ms since the epoch) stays pending, due again at the
--                       window's end ('defer'), or ends throttled ('drop'), kept as long as an expired one
-- Returns: {now_ms, wait_us, sent_count, id, state JSON, payload JSON, ...}
--          the first sent_count records were delivered here and are sent; the rest are claimed, under the lease
--          (those expired here are in neither: only their records, the expired set and the counters tell)
--          wait_us: microseconds until the next due notification after this claim, -1 when none is pending
--          (finer than the ms scores, so a worker can wake within a fraction of a millisecond of due)
-- include: outcome.lua
-- include: sliced.lua
local payloads_of = {}  -- call id -> its payload, read once per claim
local function payload_of(holder)
  local payload = payloads_of[holder]
  if payload == nil then
    payload = redis.call('HGET', KEYS[3], holder) or '{}'
    payloads_of[holder] = payload
  end
  return payload
end
local function stored_payload(id, raw)  -- a record's payload: under its call's id when it names one
  return payload_of(raw and string.match(raw, '"call":(%d+)') or id)
end

local kept = redis.call('GET', KEYS[23])
if kept then  -- a retry of a call that already ran (its reply was lost): the same batch, read again
  local k = kept_numbers(kept)
  local reply = {k[1], k[2], k[3]}
  for i = 4, #k do
    local id = string.format('%d', k[i])
    local raw = redis.call('HGET', KEYS[4], id)
    reply[#reply + 1] = k[i]
    reply[#reply + 1] = raw or '{}'
    reply[#reply + 1] = stored_payload(id, raw)
  end
  return reply
end

local now_us = tonumber(ARGV[1])
if now_us then
  now_us = now_us * 1000
else
  local t = redis.call('TIME')
  now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local now = math.floor(now_us / 1000)

local pauses = redis.call('HGETALL', KEYS[18])  -- one read per claim, none per notification
for i = 1, #pauses, 2 do
  if pauses[i] == '*' then return {now, -1, 0} end  -- everything paused: resume.lua wakes the workers
end

local deadline = now + tonumber(ARGV[3])
local partitions = tonumber(ARGV[5])
local claimed_list, sent_list = {}, {}  -- id, state, payload of each claimed here / delivered here
local claimed = 0
local expired_list = {}  -- ids expired here
local hset, zadd = {}, {}
local function take(id, raw, payload)
  hset[#hset + 1], hset[#hset + 2] = id, raw
  zadd[#zadd + 1], zadd[#zadd + 2] = deadline, id
  claimed_list[#claimed_list + 1], claimed_list[#claimed_list + 2], claimed_list[#claimed_list + 3] = id, raw, payload
  claimed = claimed + 1
end

-- Delivering here: the message is Delivered's JSON, byte for byte as the worker's encoder writes it (fields
-- in Delivered's order, no spaces, datetimes as RFC 3339 UTC with microseconds unless whole seconds).
local inbox_mode, take_rest = ARGV[6], ARGV[12]
local halted = false  -- ARGV[12] '0' met a notification it would have claimed: the claim ends there
local purge_at = now + (tonumber(ARGV[7]) or 0)
local maxlen, inbox_keep = ARGV[8], tonumber(ARGV[9]) or 0
local trim_below = string.format('%d', math.max(0, now - inbox_keep))
local MAX_MS = 8000000000000  -- past 2223 a float second no longer holds the exact ms the worker would show

local function iso(ms)  -- epoch ms (0 <= ms < MAX_MS) -> "2024-01-02T03:04:05.678000Z", civil from days (H. Hinnant)
  local s = math.floor(ms / 1000)
  local days = math.floor(s / 86400)
  local sec = s - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  local text = string.format('%04d-%02d-%02dT%02d:%02d:%02d', year, month, doy - math.floor((153 * mp + 2) / 5) + 1,
    math.floor(sec / 3600), math.floor(sec % 3600 / 60), sec % 60)
  local frac = ms - s * 1000
  if frac > 0 then text = text .. string.format('.%03d000', frac) end
  return text .. 'Z'
end
local sent_iso = iso(now)

local ESCAPES = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r',
  ['\t'] = '\\t'}
local function json_string(s)  -- as the worker's encoder writes a string (cjson would also escape '/')
  if not string.find(s, '[%z\1-\31"\\]') then return '"' .. s .. '"' end  -- most: gsub costs more than a find
  return '"' .. string.gsub(s, '[%z\1-\31"\\]',
    function(c) return ESCAPES[c] or string.format('\\u%04x', string.byte(c)) end) .. '"'
end

local opt_outs = inbox_mode ~= '' and redis.call('SCARD', KEYS[22]) > 0  -- anyone's websocket opt-out to mind

local paused_types = false  -- each paused type's JSON text (as a payload holds it) -> true; false when none is
for i = 1, #pauses, 2 do
  paused_types = paused_types or {}
  paused_types[json_string(pauses[i])] = true
end

local limits = false  -- each limited type's JSON text -> {type, most, window_ms, drops}; false when none is
if ARGV[14] and ARGV[14] ~= '' then
  for typ, v in pairs(cjson.decode(ARGV[14])) do
    limits = limits or {}
    limits[json_string(typ)] = {typ, tonumber(v[1]), tonumber(v[2]), v[3] == 'drop'}
  end
end

-- The members of a JSON object as the worker's encoder writes it (no spaces): name -> its value's text,
-- or nil when the text is not such an object. Values are delimited, not decoded.
local function string_end(s, i)  -- s[i] opens a string: where it closes
  local j = i
  while true do
    j = string.find(s, '["\\]', j + 1)
    if not j or string.byte(s, j) == 34 then return j end
    j = j + 1  -- an escape: the next character is part of it
  end
end
local function value_end(s, i)
  local c = string.byte(s, i)
  if c == 34 then return string_end(s, i) end
  if c ~= 123 and c ~= 91 then  -- a number, true, false or null
    local _, e = string.find(s, '^[%w%.%+%-]+', i)
    return e
  end
  local depth, j = 0, i
  while j do
    j = string.find(s, '["{}%[%]]', j)
    if not j then return nil end
    c = string.byte(s, j)
    if c == 34 then
      j = string_end(s, j)
    elseif c == 123 or c == 91 then
      depth = depth + 1
    else
      depth = depth - 1
      if depth == 0 then return j end
    end
    j = j and j + 1
  end
end
local function json_members(s)
  if string.sub(s, 1, 1) ~= '{' then return nil end
  local out, i = {}, 2
  if s == '{}' then return out end
  while string.byte(s, i) == 34 do
    local name_end = string_end(s, i)
    if not name_end or string.byte(s, name_end + 1) ~= 58 then return nil end
    local stop = value_end(s, name_end + 2)
    if not stop then return nil end
    out[string.sub(s, i + 1, name_end - 1)] = string.sub(s, name_end + 2, stop)
    local after = string.byte(s, stop + 1)
    if after == 125 then return (stop + 1 == #s) and out or nil end
    if after ~= 44 then return nil end
    i = stop + 2
  end
  return nil
end

-- A payload's expiry, {expires_at or false, late_after_ms or false}, or false when it has none; read once per
-- payload holder, and delimited only when the payload names a member of that name somewhere.
local expiries = {}
local function expiry_of(holder)
  local e = expiries[holder]
  if e ~= nil then return e end
  e = false
  local payload = payload_of(holder)
  if string.find(payload, '"expires_at":', 1, true) or string.find(payload, '"late_after_ms":', 1, true) then
    local m = json_members(payload)
    if m then
      local at, late = tonumber(m.expires_at or ''), tonumber(m.late_after_ms or '')
      if at or late then e = {at or false, late or false} end
    end
  end
  expiries[holder] = e
  return e
end
local spreads = {}
local function spread_of(holder)  -- a call payload's spread_ms (> 0), or false; read once per payload
  local v = spreads[holder]
  if v == nil then
    v = false
    local payload = payload_of(holder)
    if string.find(payload, '"spread_ms":', 1, true) then
      local m = json_members(payload)
      v = m and tonumber(m.spread_ms or '') or false
      if v and v <= 0 then v = false end
    end
    spreads[holder] = v
  end
  return v
end
local function too_late(e, scheduled_at)  -- whether a notification with expiry `e`, due at scheduled_at, expires now
  return e and ((e[1] and now >= e[1]) or (e[2] and now > scheduled_at + e[2])) or false
end

local PRIORITIES = {['"low"'] = true, ['"normal"'] = true, ['"high"'] = true, ['"urgent"'] = true}
local middles = {}  -- payload holder -> its message's middle (title .. scheduled_at's opening quote), or false
-- The part of a delivered message that comes from the payload, when the payload is one this script may
-- deliver (websocket-only, and shaped as the worker's Payload decoder wants it); false otherwise.
local function middle_of(holder)
  local middle = middles[holder]
  if middle ~= nil then return middle end
  middle = false
  local m = json_members(payload_of(holder))
  if m then
    local channels = m.channels
    local only_websocket = channels == '["websocket"]'
      or ((channels == nil or channels == '[]') and inbox_mode == 'all')  -- none named: the default channels
    local typ, priority, data = m.type or '"system"', m.priority or '"normal"', m.data or '{}'
    local by = m.created_by
    -- a templated one (its payload names a template) is rendered by the worker, and a digest member (it names
    -- a digest_key) joins its digest there, so each is claimed for Python
    if only_websocket and m.template == nil and m.digest_key == nil and m.title and m.message and string.sub(m.title, 1, 1) == '"'
      and string.sub(m.message, 1, 1) == '"' and string.sub(typ, 1, 1) == '"' and PRIORITIES[priority]
      and string.sub(data, 1, 1) == '{' and (data == '{}' or pcall(cjson.decode, data))
      and (by == nil or by == 'null' or string.sub(by, 1, 1) == '"') then
      middle = ',"title":' .. m.title .. ',"message":' .. m.message .. ',"notification_type":' .. typ
        .. ',"priority":' .. priority .. ',"data":' .. data .. ',"scheduled_at":"'
    end
  end
  middles[holder] = middle
  return middle
end

local holds_paused = {}  -- payload holder -> whether its type is paused
local function paused(holder)
  local p = holds_paused[holder]
  if p == nil then
    local m = json_members(payload_of(holder))
    p = (m and paused_types[m.type or '"system"']) or false
    holds_paused[holder] = p
  end
  return p
end
local holds_limit = {}  -- payload holder -> its type's limit, or false
local function limit_of(holder)
  local l = holds_limit[holder]
  if l == nil then
    local m = json_members(payload_of(holder))
    l = (m and limits[m.type or '"system"']) or false
    holds_limit[holder] = l
  end
  return l
end
local counting = {}  -- rate keys given their expiry in this claim
-- Count one notification to `recipient` under limit `l`: false while within it, else the window's end (epoch ms).
local function over_limit(recipient, l)
  local window = l[3]
  local index = math.floor(now / window)
  local key = KEYS[20] .. string.format('%d', index) .. ':' .. l[1]
  local n = redis.call('HINCRBY', key, recipient, 1)
  if not counting[key] then
    redis.call('PEXPIRE', key, (index + 1) * window - now + 1000)  -- relative: a pinned clock may be far off
    counting[key] = true
  end
  return n > l[2] and (index + 1) * window
end
local deferred = 0  -- how many this claim deferred
local redue = {}  -- due set -> {due time, id, ...} of those deferred back into it

local parked = {}  -- due time, "<priority> <member>", ... of those parked here (ZADD's arguments)
local TERMINAL = {sent = true, cancelled = true, failed = true, expired = true, collapsed = true, throttled = true}
local PRIORITY_OF = {[KEYS[6]] = 'urgent', [KEYS[7]] = 'high', [KEYS[1]] = 'normal', [KEYS[8]] = 'low'}

local released = {}  -- created_by -> how many of theirs were sent or expired here (no longer pending)
local sent_count = 0
-- Append one notification's message to its recipient's inbox and publish it, as publish_inbox.lua does, and
-- record it sent, as ack.lua does. `rest` is its message after the recipient; `state` its sent state JSON.
local function send(id, recipient, rest, state, payload, creator)
  local inbox = KEYS[16] .. recipient
  local top = redis.call('XREVRANGE', inbox, '+', '-', 'COUNT', 1)
  local body = '{"type":"notification","id":' .. id .. ',"recipient":' .. json_string(recipient) .. rest
  local sid
  if top[1] then  -- trim by age before the append, so a clock ahead of the stream ids never trims the new entry
    redis.call('XTRIM', inbox, 'MINID', trim_below)
    sid = redis.call('XADD', inbox, 'MAXLEN', '~', maxlen, '*', 'n', body, 'p', top[1][1])
  else  -- a new (or emptied) inbox: nothing to trim, by age or by count
    sid = redis.call('XADD', inbox, '*', 'n', body, 'p', '0-0')
  end
  redis.call('PEXPIRE', inbox, inbox_keep)
  redis.call(ARGV[13] == 'SPUBLISH' and 'SPUBLISH' or 'PUBLISH', ARGV[10] .. recipient, '{"stream_id":"' .. sid .. '",' .. string.sub(body, 2))
  hset[#hset + 1], hset[#hset + 2] = id, state
  sent_list[#sent_list + 1], sent_list[#sent_list + 2], sent_list[#sent_list + 3] = id, state, payload
  if creator then released[creator] = (released[creator] or 0) + 1 end
  sent_count = sent_count + 1
  claimed = claimed + 1
end

-- Mark one notification expired: `state` is its expired state JSON.
local function expire(id, state, creator)
  hset[#hset + 1], hset[#hset + 2] = id, state
  expired_list[#expired_list + 1] = id
  if creator then released[creator] = (released[creator] or 0) + 1 end
end

local throttled_list = {}  -- ids throttled here
-- Mark one notification throttled (over its recipient's limit, which drops): `state` is its throttled state JSON.
local function throttle(id, state, creator)
  hset[#hset + 1], hset[#hset + 2] = id, state
  throttled_list[#throttled_list + 1] = id
  if creator then released[creator] = (released[creator] or 0) + 1 end
end

-- Claim up to `room` of the next recipients of the call under `member` in `due`, passing over any that a
-- cancel or reschedule already gave a record of their own; returns how many it claimed or expired.
local function claim_from_call(due, member, room)
  local cid = string.sub(member, 2)
  local header = redis.call('HGET', KEYS[9], cid)
  if not header then  -- a call with nothing left to claim (never expected): drop its due entry
    redis.call('ZREM', due, member)
    return 0
  end
  local at, created, count, nxt, offset, priority, creator =
    string.match(header, '^(%d+) (%d+) (%d+) (%d+) (%d+) (%S+) ?(%S*)$')
  if paused_types and paused(cid) then  -- the whole call waits for its type's resume
    parked[#parked + 1], parked[#parked + 2] = redis.call('ZSCORE', due, member), PRIORITY_OF[due] .. ' ' .. member
    redis.call('ZREM', due, member)
    return 1
  end
  count, nxt, offset = tonumber(count), tonumber(nxt), tonumber(offset)
  local at_ms = tonumber(at)
  local list = redis.call('HGET', KEYS[10], cid)
  local head = '{"status":"processing","attempts":1,"lease_until":' .. string.format('%d', deadline)
    .. ',"recipient":'
  local rest_tail = ',"created_at":' .. created .. ',"call":' .. cid
  if creator ~= '' then rest_tail = rest_tail .. ',"created_by":' .. cjson.encode(creator) end
  if priority ~= 'normal' then rest_tail = rest_tail .. ',"priority":"' .. priority .. '"' end
  rest_tail = rest_tail .. '}'
  local tail = ',"scheduled_at":' .. at .. rest_tail
  local payload = payload_of(cid)
  local spread = count > 1 and spread_of(cid)
  local expiry = expiry_of(cid)
  -- Spread: recipient k is due at + floor(k * spread / count); the call's due entry is its next recipient's.
  local function due_of(k) return spread and at_ms + math.floor(k * spread / count) or at_ms end
  local late = too_late(expiry, due_of(nxt))
  local middle = inbox_mode ~= '' and at_ms < MAX_MS and middle_of(cid)
  if not late and not middle and take_rest == '0' then  -- they would be claimed: the call and the rest stay due
    halted = true
    return 0
  end
  local sent_head = '{"status":"sent","attempts":1,"sent_at":' .. string.format('%d', now) .. ',"recipient":'
  local function message_tail(k)
    return middle .. iso(due_of(k)) .. '","sent_at":"' .. sent_iso .. '","attempt":1}'
  end
  local shared_message = middle and not spread and message_tail(nxt)
  local expired_head = '{"status":"expired","attempts":0,"expired_at":' .. string.format('%d', now)
    .. ',"recipient":'
  local by = creator ~= '' and creator or nil
  local lim = limits and limit_of(cid)
  local pending_head = '{"status":"pending","attempts":0,"recipient":'
  local throttled_head = '{"status":"throttled","attempts":0,"throttled_at":' .. string.format('%d', now)
    .. ',"recipient":'
  local before = claimed + #expired_list + deferred + #throttled_list
  local function taken() return claimed + #expired_list + deferred + #throttled_list - before end
  local due_end = spread and math.min(count, math.ceil((now - at_ms + 1) * count / spread)) or count
  while taken() < room and nxt < due_end do
    local n = math.min(room - taken(), due_end - nxt)
    local ids, people, starts = {}, {}, {}
    for j = 1, n do
      starts[j] = offset
      local space = string.find(list, ' ', offset, true)
      people[j] = string.sub(list, offset, space and space - 1 or -1)
      offset = space and space + 1 or #list + 1
      ids[j] = string.format('%d', tonumber(cid) + (nxt + j - 1) * partitions)
    end
    local own = call_sliced('HMGET', KEYS[4], ids, 1000)
    local members = {}
    for j, id in ipairs(ids) do members[j] = people[j] .. ' ' .. string.format('%016d', tonumber(id)) end
    local indexed = call_sliced('ZMSCORE', KEYS[13], members, 1000)
    local opted = middle and opt_outs and call_sliced('SMISMEMBER', KEYS[22], people, 1000)
    local stop  -- with ARGV[12] '0': the first recipient the worker must have (an opt-out), where the claim halts
    for j, id in ipairs(ids) do
      local k, t, is_late = nxt + j - 1, tail, late
      if spread then
        t = ',"scheduled_at":' .. string.format('%d', due_of(k)) .. rest_tail
        is_late = too_late(expiry, due_of(k))
      end
      local mine = middle and not (opted and opted[j] == 1)  -- delivered here unless late or over a limit
      if not own[j] and indexed[j] and not is_late and not mine and take_rest == '0' then
        stop = j
        break
      end
      if not own[j] and indexed[j] then
        local until_ms = not is_late and lim and over_limit(people[j], lim)
        if is_late then
          expire(id, expired_head .. cjson.encode(people[j]) .. t, by)
        elseif until_ms and lim[4] then
          throttle(id, throttled_head .. cjson.encode(people[j]) .. t, by)
        elseif until_ms then  -- a record of its own, still pending, due again when the window ends
          hset[#hset + 1], hset[#hset + 2] = id, pending_head .. cjson.encode(people[j]) .. t
          redue[due] = redue[due] or {}
          redue[due][#redue[due] + 1], redue[due][#redue[due] + 2] = until_ms, id
          deferred = deferred + 1
        elseif mine then
          local state = sent_head .. cjson.encode(people[j]) .. t
          send(id, people[j], shared_message or message_tail(k), state, payload, by)
        else
          take(id, head .. cjson.encode(people[j]) .. t, payload)
        end
      end
    end
    if stop then
      nxt, offset, halted = nxt + stop - 1, starts[stop], true
      break
    end
    nxt = nxt + n
  end
  if nxt >= count then
    redis.call('ZREM', due, member)
    redis.call('HDEL', KEYS[9], cid)
    redis.call('HDEL', KEYS[10], cid)
    redis.call('ZREM', KEYS[11], cid)
  else
    redis.call('HSET', KEYS[9], cid,
      at .. ' ' .. created .. ' ' .. count .. ' ' .. nxt .. ' ' .. offset .. ' ' .. priority .. ' ' .. creator)
    if spread then redis.call('ZADD', due, due_of(nxt), member) end  -- the next recipient's time
  end
  if taken() > 0 then redis.call('DECRBY', KEYS[12], taken()) end
  return taken()
end

-- Whether a decoded state is one this script may deliver: the fields the message and the worker's State
-- decoder need, of their types, and no channel recorded as done by an earlier attempt.
local function deliverable(st)
  local at = st.scheduled_at
  return type(st.recipient) == 'string' and type(at) == 'number' and at == math.floor(at) and at >= 0
    and at < MAX_MS and type(st.created_at) == 'number' and (st.done == nil or next(st.done) == nil)
    and (st.created_by == nil or type(st.created_by) == 'string')
end

-- Notifications with records of their own (single-recipient ones, and retries and reschedules of any), due
-- in `due`; with ARGV[12] '0', only those up to the first this script cannot deliver leave due.
local function claim_records(due, ids)
  local states = call_sliced('HMGET', KEYS[4], ids, 1000)
  local decoded, middles_of, lates, skip, parks, defers = {}, {}, {}, {}, {}, {}
  for i, id in ipairs(ids) do
    local raw = states[i]
    local ok, st = false, nil
    if raw then ok, st = pcall(cjson.decode, raw) end
    if raw and ok and type(st) == 'table' then
      local holder = st.call and string.format('%d', st.call) or id
      if TERMINAL[st.status] then  -- left due while parked (cancelled, collapsed): it only leaves due
        skip[i] = true
      elseif paused_types and paused(holder) then
        skip[i] = true
        parks[#parks + 1] = id
      else
        decoded[i] = st
        lates[i] = type(st.scheduled_at) == 'number' and too_late(expiry_of(holder), st.scheduled_at)
        middles_of[i] = not lates[i] and inbox_mode ~= '' and deliverable(st) and middle_of(holder)
        if middles_of[i] and opt_outs and redis.call('SISMEMBER', KEYS[22], st.recipient) == 1 then
          middles_of[i] = false  -- the worker applies this recipient's opt-out
        end
        if limits and not lates[i] and (middles_of[i] or take_rest ~= '0') and type(st.recipient) == 'string' then
          local l = limit_of(holder)
          defers[i] = l and over_limit(st.recipient, l)
          if defers[i] and l[4] then defers[i] = 'drop' end
        end
      end
    end
    if not skip[i] and not middles_of[i] and not lates[i] and not defers[i] and raw and take_rest == '0' then  -- it would be claimed: it stays due
      halted = true
      ids = {unpack(ids, 1, i - 1)}
      break
    end
  end
  if #parks > 0 then
    local at, priority = call_sliced('ZMSCORE', due, parks, 1000), PRIORITY_OF[due]
    for j, id in ipairs(parks) do parked[#parked + 1], parked[#parked + 2] = at[j], priority .. ' ' .. id end
  end
  if #ids > 0 then call_sliced('ZREM', due, ids, 1000) end
  for i, id in ipairs(ids) do
    local raw, st = states[i], decoded[i]
    if skip[i] then  -- parked or dropped above: nothing more
    elseif raw and not st then
      -- A state Lua cannot read is held under the lease as it is, for the worker to fail with its reason;
      -- raising here would fail the whole claim, and every claim after it, over one corrupt record.
      zadd[#zadd + 1], zadd[#zadd + 2] = deadline, id
      claimed_list[#claimed_list + 1], claimed_list[#claimed_list + 2], claimed_list[#claimed_list + 3] =
        id, raw, stored_payload(id, raw)
      claimed = claimed + 1
    elseif st and defers[i] == 'drop' then  -- over its recipient's limit, which drops
      st.status = 'throttled'
      st.throttled_at = now
      st.lease_until = nil
      throttle(id, cjson.encode(st), type(st.created_by) == 'string' and st.created_by or nil)
    elseif st and defers[i] then  -- over its recipient's limit: pending still, due again when the window ends
      redue[due] = redue[due] or {}
      redue[due][#redue[due] + 1], redue[due][#redue[due] + 2] = defers[i], id
      deferred = deferred + 1
    elseif st and lates[i] then
      st.status = 'expired'
      st.expired_at = now
      st.lease_until = nil
      expire(id, cjson.encode(st), type(st.created_by) == 'string' and st.created_by or nil)
    elseif st then
      st.attempts = (tonumber(st.attempts) or 0) + 1
      local payload = payload_of(st.call and string.format('%d', st.call) or id)
      local middle = middles_of[i]
      if middle then
        st.status = 'sent'
        st.sent_at = now
        st.lease_until = nil
        local rest = middle .. iso(st.scheduled_at) .. '","sent_at":"' .. sent_iso .. '","attempt":'
          .. string.format('%d', st.attempts) .. '}'
        send(id, st.recipient, rest, cjson.encode(st), payload, st.created_by)
      else
        st.status = 'processing'
        st.lease_until = deadline
        take(id, cjson.encode(st), payload)
      end
    end
  end
end

local dues = {KEYS[6], KEYS[7], KEYS[1], KEYS[8]}  -- the order priorities are claimed in
local limit = tonumber(ARGV[2])
local used = 0
-- Each fetch takes what it found out of due (a call once its last recipient is claimed), so fetching again
-- until the limit is reached or nothing is due always moves on. Records are claimed before a call due after
-- them, so a claim that halts (ARGV[12] '0') has taken exactly what was due before where it halted.
for _, due in ipairs(dues) do
  while used < limit and not halted do
    local got = redis.call('ZRANGE', due, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit - used)
    if #got == 0 then break end
    local ids = {}
    for _, member in ipairs(got) do
      if used >= limit or halted then break end
      if string.sub(member, 1, 1) == '-' then
        if #ids > 0 then
          claim_records(due, ids)
          ids = {}
        end
        if not halted then used = used + claim_from_call(due, member, limit - used) end
      else
        ids[#ids + 1] = member
        used = used + 1
      end
    end
    if #ids > 0 and not halted then claim_records(due, ids) end
  end
  if halted then break end
end
if #hset > 0 then call_sliced('HSET', KEYS[4], hset, 1000) end
if #zadd > 0 then call_sliced('ZADD', KEYS[2], zadd, 1000) end
if #parked > 0 then call_sliced('ZADD', KEYS[19], parked, 1000) end
for due, list in pairs(redue) do call_sliced('ZADD', due, list, 1000) end
if deferred > 0 then redis.call('HINCRBY', KEYS[5], 'deferred', deferred) end
if #throttled_list > 0 then
  local zthrottled, purge_throttled = {}, now + (tonumber(ARGV[11]) or 0)
  for i, id in ipairs(throttled_list) do zthrottled[2 * i - 1], zthrottled[2 * i] = purge_throttled, id end
  call_sliced('ZADD', KEYS[21], zthrottled, 1000)
  redis.call('HINCRBY', KEYS[5], 'throttled', #throttled_list)
end
if claimed > 0 then redis.call('HINCRBY', KEYS[5], 'claimed', claimed) end
if sent_count > 0 then
  local zsent = {}
  for i = 1, #sent_list, 3 do zsent[#zsent + 1], zsent[#zsent + 2] = purge_at, sent_list[i] end
  call_sliced('ZADD', KEYS[14], zsent, 1000)
  redis.call('HINCRBY', KEYS[5], 'sent', sent_count)
end
if #expired_list > 0 then
  local zexpired, purge_expired = {}, now + (tonumber(ARGV[11]) or 0)
  for i, id in ipairs(expired_list) do zexpired[2 * i - 1], zexpired[2 * i] = purge_expired, id end
  call_sliced('ZADD', KEYS[17], zexpired, 1000)
  redis.call('HINCRBY', KEYS[5], 'expired', #expired_list)
end
for creator, count in pairs(released) do  -- they leave pending: no longer held by their creator
  if redis.call('HINCRBY', KEYS[15], creator, -count) <= 0 then redis.call('HDEL', KEYS[15], creator) end
end

local reply = {now, -1, sent_count}
for _, v in ipairs(sent_list) do reply[#reply + 1] = v end
for _, v in ipairs(claimed_list) do reply[#reply + 1] = v end
local next_due
for _, due in ipairs(dues) do
  local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
  if first[2] and (next_due == nil or tonumber(first[2]) < next_due) then next_due = tonumber(first[2]) end
end
if next_due then reply[2] = math.max(0, next_due * 1000 - now_us) end
if claimed > 0 then
  local outcome = {reply[1], reply[2], reply[3]}
  for i = 4, #reply, 3 do outcome[#outcome + 1] = tonumber(reply[i]) end
  keep(KEYS[23], ARGV[4], outcome)
end
return reply
