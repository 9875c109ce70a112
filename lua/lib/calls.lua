-- calls (included): one recipient still pending inside a many-recipient call, and the record it starts with
-- once taken out of the call to be cancelled, rescheduled, edited or collapsed alone.
-- `k` names the partition's keys: k.call_starts (ZSET call id -> call id), k.calls (HASH call id -> header),
-- k.call_recipients (HASH call id -> recipients) and k.by_recipient (ZSET "<recipient> <id, 16 digits>");
-- `step` is the partition count: a call's recipients have ids call id + i * step.
local function pending_in_call(id, k, step)  -- the call's fields and the recipient; nil when none holds `id`
  local found = redis.call('ZRANGE', k.call_starts, id, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, 1)
  if #found == 0 then return nil end
  local cid = found[1]
  local header = redis.call('HGET', k.calls, cid)
  if not header then return nil end
  local at, created, count, nxt, offset, priority, creator =
    string.match(header, '^(%d+) (%d+) (%d+) (%d+) (%d+) (%S+) ?(%S*)$')
  local i = (tonumber(id) - tonumber(cid)) / step
  if i ~= math.floor(i) or i < tonumber(nxt) or i >= tonumber(count) then return nil end
  local list = redis.call('HGET', k.call_recipients, cid)
  local from = tonumber(offset)
  for _ = tonumber(nxt) + 1, i do from = string.find(list, ' ', from, true) + 1 end
  local space = string.find(list, ' ', from, true)
  local recipient = string.sub(list, from, space and space - 1 or -1)
  if not redis.call('ZSCORE', k.by_recipient, recipient .. ' ' .. string.format('%016d', tonumber(id))) then
    return nil
  end
  return {cid = cid, at = at, created = created, priority = priority, creator = creator, recipient = recipient}
end
-- The record a recipient taken out of its call starts with (no JSON decoded; cjson quotes the strings); `call`
-- needs cid, created, creator and priority.
local function own_record(call, recipient, status, scheduled_at, extra)
  local state = '{"status":"' .. status .. '","attempts":0,"recipient":' .. cjson.encode(recipient)
    .. ',"scheduled_at":' .. scheduled_at .. ',"created_at":' .. call.created .. ',"call":' .. call.cid .. extra
  if call.creator ~= '' then state = state .. ',"created_by":' .. cjson.encode(call.creator) end
  if call.priority ~= 'normal' then state = state .. ',"priority":"' .. call.priority .. '"' end
  return state .. '}'
end
