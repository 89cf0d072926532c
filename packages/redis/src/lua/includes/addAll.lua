-- SADDs the comma-separated members of `list` to `key`, in chunks that stay under Lua's
-- unpack limit; returns how many members the list had.
local function addAll(key, list)
  local chunk, count = {}, 0
  for m in string.gmatch(list, "[^,]+") do
    count = count + 1
    chunk[#chunk + 1] = m
    if #chunk == 1000 then
      rcall("SADD", key, unpack(chunk))
      chunk = {}
    end
  end
  if #chunk > 0 then rcall("SADD", key, unpack(chunk)) end
  return count
end
