--- @include "indexMember"
-- Sets an instance's status and moves it in the status index (KEYS of the caller: state hash and
-- the status index zset). `known`: {status, createdAt} as the caller read them in this script, to
-- save the read.
local function setStatus(stateKey, statusIndexKey, instanceId, newStatus, known)
  local cur = known or rcall("HMGET", stateKey, "status", "createdAt")
  if cur[1] == newStatus then return end
  if cur[1] then rcall("ZREM", statusIndexKey, indexMember(cur[1], cur[2], instanceId)) end
  rcall("ZADD", statusIndexKey, 0, indexMember(newStatus, cur[2], instanceId))
  rcall("HSET", stateKey, "status", newStatus)
end
