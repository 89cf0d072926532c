--- @include "indexMember"
-- Removes an instance from the creation, status and name indexes.
local function removeFromIndexes(stateKey, allIndexKey, statusIndexKey, nameIndexKey, instanceId)
  local cur = rcall("HMGET", stateKey, "status", "createdAt", "name")
  if not cur[1] then return end
  rcall("ZREM", allIndexKey, indexMember("", cur[2], instanceId))
  rcall("ZREM", statusIndexKey, indexMember(cur[1], cur[2], instanceId))
  rcall("ZREM", nameIndexKey, indexMember(cur[3], cur[2], instanceId))
end
