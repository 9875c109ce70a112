-- dead (included by reap.lua and retry.lua, the scripts that fail notifications for good).
-- The dead-letter cap: while failed holds more than max_dead, the dead letters purged soonest (the oldest failures)
-- go now, their records and index entries as purge.lua removes them. Only a call that failed something can push
-- failed over the cap, so only such a call looks; at most max(1000, what it failed) go per call, so lowering the
-- cap trims gradually instead of holding the server. A resent call finds the set at the cap and drops nothing.
local function drop_dead(cap, failed_now, k)
  if cap <= 0 or failed_now <= 0 then return 0 end
  local over = math.min(redis.call('ZCARD', k.failed) - cap, math.max(1000, failed_now))
  if over <= 0 then return 0 end
  local ids = redis.call('ZRANGE', k.failed, 0, over - 1)
  for _, id in ipairs(ids) do
    local raw = redis.call('HGET', k.state, id)
    local ok, st = false, nil
    if raw then ok, st = pcall(cjson.decode, raw) end
    if not (ok and type(st) == 'table') then st = {} end
    local suffix = ' ' .. string.format('%016d', tonumber(id))
    if type(st.recipient) == 'string' then redis.call('ZREM', k.by_recipient, st.recipient .. suffix) end
    if type(st.created_by) == 'string' then redis.call('ZREM', k.by_creator, st.created_by .. suffix) end
    if st.call then  -- a many-recipient call's payload goes with the last record sharing it
      local call = string.format('%d', st.call)
      if redis.call('HINCRBY', k.payload_refs, call, -1) <= 0 then
        redis.call('HDEL', k.payload_refs, call)
        redis.call('HDEL', k.notifications, call)
      end
    else
      redis.call('HDEL', k.notifications, id)
    end
    redis.call('HDEL', k.state, id)
    redis.call('ZREM', k.failed, id)
  end
  if #ids > 0 then redis.call('HINCRBY', k.counters, 'dead_dropped', #ids) end
  return #ids
end
