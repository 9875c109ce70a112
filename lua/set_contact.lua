-- set_contact: change some of one recipient's contact fields (email, phone, locale, zone, quiet_hours, opt_outs),
-- keeping the others; a field set to '' is removed, and a recipient left with none has no entry at all. Opt-outs
-- (opt_outs: channel -> list of types) are replaced whole, or changed an entry at a time: opt_out adds one, opt_in
-- takes one away, and a channel left with no type goes. The same call run twice leaves the same record (it sets
-- values, and adds an entry only when absent), so a resent call needs no op key.
-- KEYS[1] contacts      HASH  recipient -> contact JSON (only the fields that are set)
-- KEYS[2] with_preferences SET recipients with a zone or quiet hours, so a schedule call knows whether to look
--                       any up (kept here, with the contact it follows)
-- KEYS[3] websocket_opt_outs SET recipients with an opt-out of the websocket channel or of every channel ('*'),
--                       whose websocket-only notifications claim.lua leaves to the worker
-- ARGV[1] recipient
-- ARGV[2] max_opt_outs  most (channel, type) entries the opt-outs may hold: a change beyond writes nothing
-- ARGV[3..] pairs       field name, new value ('' removes the field); opt_outs' value is its JSON, and
--                       opt_out/opt_in's one entry, 'channel:type'
-- Returns: {contact JSON now ('' when none is left), opt-out entries it would make (if over max_opt_outs), or 0}
--          (a change that would make more opt-out entries than max_opt_outs writes nothing)
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local contact = raw and cjson.decode(raw) or {}
local function position(list, value)
  for i, v in ipairs(list) do
    if v == value then return i end
  end
  return nil
end
for i = 3, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  if field == 'opt_outs' then
    contact.opt_outs = value ~= '' and cjson.decode(value) or nil
  elseif field == 'opt_out' or field == 'opt_in' then
    local sep = string.find(value, ':', 1, true)
    local channel, typ = string.sub(value, 1, sep - 1), string.sub(value, sep + 1)
    local outs = contact.opt_outs or {}
    local types = outs[channel] or {}
    local at = position(types, typ)
    if field == 'opt_out' and not at then
      types[#types + 1] = typ
    elseif field == 'opt_in' and at then
      table.remove(types, at)
    end
    outs[channel] = #types > 0 and types or nil
    contact.opt_outs = next(outs) ~= nil and outs or nil
  elseif value == '' then
    contact[field] = nil
  else
    contact[field] = value
  end
end
local entries = 0
for _, types in pairs(contact.opt_outs or {}) do entries = entries + #types end
if entries > tonumber(ARGV[2]) then return {raw or '', entries} end
if contact.zone or contact.quiet_hours then
  redis.call('SADD', KEYS[2], ARGV[1])
else
  redis.call('SREM', KEYS[2], ARGV[1])
end
local outs = contact.opt_outs
if outs and (outs.websocket or outs['*']) then
  redis.call('SADD', KEYS[3], ARGV[1])
else
  redis.call('SREM', KEYS[3], ARGV[1])
end
if next(contact) == nil then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return {'', 0}
end
local text = cjson.encode(contact)
redis.call('HSET', KEYS[1], ARGV[1], text)
return {text, 0}
