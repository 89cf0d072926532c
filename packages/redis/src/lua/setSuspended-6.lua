--[[
  Suspends or resumes an instance. Suspending bumps the version, so an episode running or queued
  now is dropped at its commit; events keep arriving in the inbox but wake nothing. Resuming
  restores the previous status and queues an episode, which sees everything that arrived.

  Input:
    KEYS[1] instance state hash
    KEYS[2] inbox list
    KEYS[3] partition outbox hash
    KEYS[4] partition outbox index
    KEYS[5] partition status index
    KEYS[6] claim set (tokens of the instance's payloads stored apart)

    ARGV[1] instance id
    ARGV[2] "suspend" | "resume"
    ARGV[3] inbox entry for the history: ExecutionSuspended / ExecutionResumed ("n|" + msgpack)
    ARGV[4] now (ms)
    ARGV[5] the operation's id ("" for none): one whose id the state holds (`opid`) was applied
            before (a command ioredis sent again after a reconnect): {1, "", ""}, nothing written
    ARGV[6] M: number of payloads stored apart (claim check: the reason when it is large)
    ARGV[7...] M pairs: token, encoded payload

  Output:
    {1, wakeJobId, wakePayload}   done (wake only on resume)
    {-1}                          no such instance
    {-5, status}                  not in a state that allows it (suspend: Pending or Running; resume: Suspended)
]]
local rcall = redis.call
--- @include "includes/addWake"
--- @include "includes/setStatus"
--- @include "includes/storeClaims"

local st = KEYS[1]
local cur = rcall("HMGET", st, "status", "exec", "version", "prevStatus", "opid")
local status = cur[1]
if not status then return {-1} end
if ARGV[5] ~= "" and cur[5] == ARGV[5] then return {1, "", ""} end
local now = ARGV[4]
local version = tonumber(cur[3]) + 1

if ARGV[2] == "suspend" then
  if status ~= "Running" and status ~= "Pending" and status ~= "ContinuedAsNew" then return {-5, status} end
  rcall("HSET", st, "prevStatus", status, "version", version, "scheduled", 0, "updatedAt", now, "opid", ARGV[5])
  setStatus(st, KEYS[5], ARGV[1], "Suspended")
  rcall("RPUSH", KEYS[2], ARGV[3])
  storeClaims(KEYS[6], 7, tonumber(ARGV[6]))
  return {1, "", ""}
end

if status ~= "Suspended" then return {-5, status} end
rcall("HSET", st, "version", version, "scheduled", 1, "updatedAt", now, "opid", ARGV[5])
rcall("HDEL", st, "prevStatus")
setStatus(st, KEYS[5], ARGV[1], cur[4] or "Running")
rcall("RPUSH", KEYS[2], ARGV[3])
storeClaims(KEYS[6], 7, tonumber(ARGV[6]))
local jobId, payload = addWake(KEYS[3], KEYS[4], ARGV[1], cur[2], version, now)
return {1, jobId, payload}
