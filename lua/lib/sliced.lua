-- sliced (included): one multi-key command per slice of a list instead of one command per item (per-call
-- overhead dominated the scripts), sliced because unpack is bounded by Lua's stack.
local function call_sliced(cmd, key, list, step)  -- every reply's items, in order
  local out = {}
  for i = 1, #list, step do
    local part = redis.call(cmd, key, unpack(list, i, math.min(i + step - 1, #list)))
    if type(part) == 'table' then
      for j = 1, #part do out[#out + 1] = part[j] end
    end
  end
  return out
end
