--- @include "indexMember"
-- Removes an instance from the creation, status and name indexes, and from the schedule index
-- (scheduleIndexKey) when a schedule started it.
local function removeFromIndexes(stateKey, allIndexKey, statusIndexKey, nameIndexKey, instanceId, scheduleIndexKey)
  local cur = rcall("HMGET", stateKey, "status", "createdAt", "name", "sched")
  if not cur[1] then return end
  rcall("ZREM", allIndexKey, indexMember("", cur[2], instanceId))
  rcall("ZREM", statusIndexKey, indexMember(cur[1], cur[2], instanceId))
  rcall("ZREM", nameIndexKey, indexMember(cur[3], cur[2], instanceId))
  if cur[4] and scheduleIndexKey then rcall("ZREM", scheduleIndexKey, indexMember(cur[4], cur[2], instanceId)) end
end
