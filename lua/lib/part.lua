-- part (included by the batch scripts, after sliced.lua): one partition's part of a schedule call, read at once:
-- its ids, their own records, and, when the part is a pending many-recipient call, the call's fields, the
-- recipients still inside it and which of them are still indexed (one cancelled or rescheduled alone and then
-- purged is not). `k` names the partition's keys: k.state, k.calls, k.call_recipients, k.by_recipient; `step`
-- is the partition count (a call's recipients have ids call id + i * step).
local function read_part(first, count, step, k)  -- ids, states, call or nil, indexed (position -> score)
  local ids = {}
  for i = 0, count - 1 do ids[i + 1] = string.format('%d', first + i * step) end
  local states = call_sliced('HMGET', k.state, ids, 1000)
  local call
  local header = count > 1 and redis.call('HGET', k.calls, ids[1])  -- only a part of several ids can be a call
  if header then
    local at, created, total, nxt, offset, priority, creator =
      string.match(header, '^(%d+) (%d+) (%d+) (%d+) (%d+) (%S+) ?(%S*)$')
    local people = {}
    local list = redis.call('HGET', k.call_recipients, ids[1])
    for person in string.gmatch(string.sub(list, tonumber(offset)), '%S+') do people[#people + 1] = person end
    call = {cid = ids[1], at = at, created = created, total = tonumber(total), nxt = tonumber(nxt), offset = offset,
      priority = priority, creator = creator, people = people}
  end
  local indexed = {}
  if call then
    local members, at = {}, {}
    for i = call.nxt + 1, math.min(call.total, count) do
      members[#members + 1] = call.people[i - call.nxt] .. ' ' .. string.format('%016d', tonumber(ids[i]))
      at[#at + 1] = i
    end
    for j, score in ipairs(call_sliced('ZMSCORE', k.by_recipient, members, 1000)) do indexed[at[j]] = score end
  end
  return ids, states, call, indexed
end
