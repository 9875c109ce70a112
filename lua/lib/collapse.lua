-- collapse (included by schedule.lua and commit_schedule.lua, after `now` is set): the newest notification per
-- recipient and collapse key stays pending; the one it replaces becomes collapsed, kept keep_ms. `c` is where
-- the collapse keys start among KEYS; KEYS[3] (state), KEYS[4] (by_recipient) and KEYS[5] (counters) are the
-- same in both scripts. It needs calls.lua included before it.
local function collapse(c, people, count, first, step, key, keep_ms)
  local index, collapsed, calls, call_recipients, call_starts, call_pending, holders =
    KEYS[c], KEYS[c + 1], KEYS[c + 6], KEYS[c + 7], KEYS[c + 8], KEYS[c + 9], KEYS[c + 10]
  local dues = {normal = KEYS[c + 2], urgent = KEYS[c + 3], high = KEYS[c + 4], low = KEYS[c + 5]}
  local purge_at = now + tonumber(keep_ms)
  local gone = 0
  local function mark(id, creator)
    redis.call('ZADD', collapsed, purge_at, id)
    if creator and creator ~= '' and redis.call('HINCRBY', holders, creator, -1) <= 0 then
      redis.call('HDEL', holders, creator)
    end
    gone = gone + 1
  end
  local call_keys = {call_starts = call_starts, calls = calls, call_recipients = call_recipients,
    by_recipient = KEYS[4]}
  local function take_out(id)
    local raw = redis.call('HGET', KEYS[3], id)
    if raw then
      local st = cjson.decode(raw)
      if st.status ~= 'pending' then return end
      st.status, st.collapsed_at = 'collapsed', now
      redis.call('HSET', KEYS[3], id, cjson.encode(st))
      redis.call('ZREM', dues[st.priority or 'normal'], id)
      mark(id, st.created_by)
      return
    end
    local call = pending_in_call(id, call_keys, step)
    if not call then return end
    local stamp = ',"collapsed_at":' .. string.format('%d', now)
    redis.call('HSET', KEYS[3], id, own_record(call, call.recipient, 'collapsed', call.at, stamp))
    redis.call('DECRBY', call_pending, 1)
    mark(id, call.creator)
  end
  local list = type(people) == 'table' and people or {people}
  for from = 1, count, 500 do
    local to = math.min(from + 499, count)
    local fields, newest = {}, {}
    for i = from, to do
      fields[#fields + 1] = list[i] .. ' ' .. key
      newest[#newest + 1] = fields[#fields]
      newest[#newest + 1] = string.format('%d', first + (i - 1) * step)
    end
    local olds = redis.call('HMGET', index, unpack(fields))
    for _, old in ipairs(olds) do
      if old then take_out(old) end
    end
    redis.call('HSET', index, unpack(newest))
  end
  if gone > 0 then redis.call('HINCRBY', KEYS[5], 'collapsed', gone) end
end
