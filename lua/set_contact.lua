-- set_contact: change some of one recipient's contact fields (email, phone, locale, zone, quiet_hours),
-- keeping the others; a field set to '' is removed, and a recipient left with none has no entry at all. The same call run twice
-- leaves the same record (it sets values, it does not add to them), so a resent call needs no op key.
-- KEYS[1] contacts      HASH  recipient -> contact JSON (only the fields that are set)
-- KEYS[2] with_preferences SET recipients with a zone or quiet hours, so a schedule call knows whether to look
--                       any up (kept here, with the contact it follows)
-- ARGV[1] recipient
-- ARGV[2..] pairs       field name, new value ('' removes the field)
-- Returns: {contact JSON now, or '' when none is left}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local contact = raw and cjson.decode(raw) or {}
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == '' then contact[ARGV[i]] = nil else contact[ARGV[i]] = ARGV[i + 1] end
end
if contact.zone or contact.quiet_hours then
  redis.call('SADD', KEYS[2], ARGV[1])
else
  redis.call('SREM', KEYS[2], ARGV[1])
end
if next(contact) == nil then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return {''}
end
local text = cjson.encode(contact)
redis.call('HSET', KEYS[1], ARGV[1], text)
return {text}
