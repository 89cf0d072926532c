--[[
  Terminates an instance at once: no episode is needed. The version bump makes any episode
  running or queued for it stale, so nothing it computed can be committed afterwards.

  Input:
    KEYS[1] instance state hash
    KEYS[2] history stream
    KEYS[3] inbox list
    KEYS[4] pending set
    KEYS[5] wait set
    KEYS[6] partition outbox hash
    KEYS[7] partition outbox index
    KEYS[8] partition status index
    KEYS[9] claim set (tokens of the instance's payloads stored apart)

    ARGV[1] instance id
    ARGV[2] reason (msgpack)
    ARGV[3] ExecutionTerminated event (msgpack)
    ARGV[4] now (ms)
    ARGV[5] channel on which a finished instance's id is published
    ARGV[6] "1": recursive (its sub-orchestrations are terminated too): recorded as `tree`, so that a
            child whose start is still queued is not started afterwards (startInstance checks it)
    ARGV[7] the operation's id ("" for none): a terminate whose id the state holds (`opid`) was
            applied before (ioredis sends a command again after a reconnect when the old
            connection lost its reply): {1, "", ""}, nothing written
    ARGV[8] channel on which the id is published when the instance had pending tasks: workers
            abort the signals of its running activities
    ARGV[9] M: number of payloads stored apart (claim check: the reason when it is large)
    ARGV[10...] M pairs: token, encoded payload

  Events:
    PUBLISH ARGV[5] instanceId
    PUBLISH ARGV[8] instanceId   (when it had pending tasks)

  Output:
    {1, parentJobId, parentPayload, executionId, pending...}   terminated ("" when it has no
                                      parent); the execution and the ids of the tasks that were
                                      pending (their queued jobs are for the caller to remove)
    {-1}                              no such instance
    {-3, status}                      already finished
]]
local rcall = redis.call
--- @include "includes/isTerminal"
--- @include "includes/setStatus"
--- @include "includes/notifyParent"
--- @include "includes/storeClaims"

local st = KEYS[1]
local cur = rcall("HMGET", st, "status", "exec", "opid")
if not cur[1] then return {-1} end
if ARGV[7] ~= "" and cur[3] == ARGV[7] then return {1, "", ""} end
if isTerminal(cur[1]) then return {-3, cur[1]} end
local now = ARGV[4]
storeClaims(KEYS[9], 10, tonumber(ARGV[9]))
if ARGV[7] ~= "" then rcall("HSET", st, "opid", ARGV[7]) end
rcall("XADD", KEYS[2], "*", "e", ARGV[3])
setStatus(st, KEYS[8], ARGV[1], "Terminated")
rcall("HSET", st, "output", ARGV[2], "completedAt", now, "updatedAt", now, "scheduled", 0, "wmode", "u", "need", 0)
rcall("HINCRBY", st, "version", 1)
if ARGV[6] == "1" then rcall("HSET", st, "tree", 1) end
local pending = rcall("SMEMBERS", KEYS[4])
rcall("DEL", KEYS[3], KEYS[4], KEYS[5])
local parentJob = notifyParent(st, KEYS[6], KEYS[7], ARGV[1], cur[2], now)
rcall("PUBLISH", ARGV[5], ARGV[1])
if #pending > 0 then rcall("PUBLISH", ARGV[8], ARGV[1]) end
local out = {1, "", "", cur[2]}
if parentJob then out[2], out[3] = parentJob, "P" .. ARGV[1] end
for _, seq in ipairs(pending) do out[#out + 1] = seq end
return out
