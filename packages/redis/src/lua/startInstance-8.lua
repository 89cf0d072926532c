--[[
  Creates an orchestration instance (or reuses the id of a finished one) and queues its first
  episode.

  Input:
    KEYS[1] instance state hash
    KEYS[2] history stream
    KEYS[3] inbox list
    KEYS[4] pending set
    KEYS[5] wait set
    KEYS[6] partition outbox hash
    KEYS[7] partition outbox index (zset)
    KEYS[8] partition instance index (zset by creation time)

    ARGV[1] instance id
    ARGV[2] orchestrator name
    ARGV[3] execution id
    ARGV[4] now (ms)
    ARGV[5] input (msgpack)
    ARGV[6] inbox entry with the ExecutionStarted event

  Output:
    {1, wakeJobId, wakePayload}   created
    {-1, status}        the instance exists and is not finished
]]
local rcall = redis.call
--- @include "includes/isTerminal"
--- @include "includes/addWake"

local status = rcall("HGET", KEYS[1], "status")
if status and not isTerminal(status) then
  return {-1, status}
end
if status then
  -- Reusing the id of a finished instance: its old execution goes away.
  rcall("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
end

local now = ARGV[4]
rcall("HSET", KEYS[1],
  "name", ARGV[2], "status", "Pending", "exec", ARGV[3], "version", 0, "scheduled", 1,
  "createdAt", now, "updatedAt", now, "input", ARGV[5], "episodes", 0, "wmode", "u")
rcall("RPUSH", KEYS[3], ARGV[6])
rcall("ZADD", KEYS[8], now, ARGV[1])
local jobId, payload = addWake(KEYS[6], KEYS[7], ARGV[1], ARGV[3], 0, now)
return {1, jobId, payload}
