--[[
  Reads the live workers of a task hub: the index, then each entry with its remaining time to live.
  Ids whose entry has expired (a process that died) are removed from the index.

  Input:
    KEYS[1] worker index (set of worker ids); each entry is "<index key>:<worker id>" (HubKeys.worker)

  Output:
    {id1, entry1, pttl1, id2, entry2, pttl2, ...}   live entries (JSON) and their TTL in ms
]]
local rcall = redis.call
local index = KEYS[1]
local out = {}
for _, id in ipairs(rcall("SMEMBERS", index)) do
  local key = index .. ":" .. id
  local entry = rcall("GET", key)
  local ttl = entry and rcall("PTTL", key) or -2
  if entry and ttl > 0 then
    out[#out + 1] = id
    out[#out + 1] = entry
    out[#out + 1] = ttl
  else
    rcall("SREM", index, id)
  end
end
return out
