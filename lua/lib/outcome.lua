-- outcome (included where a script answers a resent call): a call's outcome kept briefly under its op key,
-- so one logical call that reaches Redis twice (its reply lost, the client retried) gets the first outcome.
local function keep(key, ttl_ms, numbers)  -- a call's outcome: its numbers in decimal (exact: cjson keeps 14 digits)
  local text = {}
  for i, v in ipairs(numbers) do text[i] = string.format('%d', v) end
  redis.call('SET', key, table.concat(text, ','), 'PX', ttl_ms)
end
local function kept_numbers(text)  -- an outcome `keep` wrote, as the numbers it was given
  local numbers = {}
  for v in string.gmatch(text, '[^,]+') do numbers[#numbers + 1] = tonumber(v) end
  return numbers
end
