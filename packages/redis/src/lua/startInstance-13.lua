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
    KEYS[8] partition creation index (lex zset)
    KEYS[9] partition status index (lex zset)
    KEYS[10] partition name index (lex zset)
    KEYS[11] claim set (tokens of the instance's payloads stored apart)
    KEYS[12] partition schedule index (lex zset)
    KEYS[13] the instance's heartbeat details hash

    ARGV[1] instance id
    ARGV[2] orchestrator name
    ARGV[3] execution id
    ARGV[4] now (ms)
    ARGV[5] input (msgpack)
    ARGV[6] inbox entry with the ExecutionStarted event
    ARGV[7] parent link "<parent id>|<parent execution>|<task id>" ("" for a top-level instance)
    ARGV[8] delayed start: the first episode runs no earlier than this (epoch ms; "" for at once).
            The wake's payload carries it ("W<id>|<execution>|0||<ms>"), so whoever dispatches the
            outbox entry queues a delayed job
    ARGV[9] schedule link "<schedule id>|<tick ms>" ("" for none): recorded in the state (`sched`,
            `tick`) and in the schedule index
    ARGV[10] "1": refuse an id whose instance exists whatever its status (a schedule's tick: a
            start made twice must not replace the instance the first one started)
    ARGV[11] a sub-orchestration's parent as the dispatcher read it in the parent's partition,
            "<status>|<execution>|<tree>" ("" otherwise): the parent may be in another partition,
            whose keys no script here may touch
    ARGV[12] the orchestrator queue's key prefix ("<prefix>:orchestrator:"), or "": the first
             episode's wake job is added to that queue here (addQueueJob: no outbox entry, no add
             and no ack by the caller), else it goes through the outbox
    ARGV[13] with ARGV[12]: the job's data (JSON)
    ARGV[14] with ARGV[12]: the job's BullMQ options as JSON, without jobId
    ARGV[15] with ARGV[12]: a worker to hand the first episode to ("" for none): when its registry
             entry is live, the wake goes to its sticky stream with the ExecutionStarted inbox
             entry (as deliverEvent hands a wake over), and its outbox entry stays as the fallback,
             instead of a job
    ARGV[16] the worker registry's index (a worker's entry is this .. ":" .. its id)
    ARGV[17] sticky stream prefix (a worker's stream is this .. its id)
    ARGV[18] M: number of payloads stored apart (claim check; the input when it is large)
    ARGV[19...] M pairs: token, encoded payload

  Output:
    {1, wakeJobId, wakePayload, added}   created; added is 1 when the wake job was added here (ARGV[12]),
                                  2 when the wake was handed to the worker ARGV[15]
    {3, wakeJobId, wakePayload}   this very start (the same execution id) was applied before: a
                                  command that ioredis sent again after a reply lost with its
                                  connection; nothing is written (never a restart of what it created)
    {2}                           a sub-orchestration start delivered twice: this parent task already created it
    {-1, status}                  the instance exists and is not finished (with ARGV[10]: exists)
    {-7}                          a sub-orchestration whose parent (that execution) was terminated
                                  recursively since it asked for the start: not started
]]
local rcall = redis.call
--- @include "includes/isTerminal"
--- @include "includes/addWake"
--- @include "includes/addQueueJob"
--- @include "includes/handWake"
--- @include "includes/setStatus"
--- @include "includes/removeFromIndexes"
--- @include "includes/storeClaims"
--- @include "includes/deleteClaims"

local st = KEYS[1]
local cur = rcall("HMGET", st, "status", "plink", "exec", "startAt")
local status = cur[1]
if status and cur[3] == ARGV[3] then
  local payload = "W" .. ARGV[1] .. "|" .. ARGV[3] .. "|0"
  if cur[4] then payload = payload .. "||" .. cur[4] end
  return {3, "w-" .. ARGV[1] .. "-" .. ARGV[3] .. "-0", payload}
end
if status and ARGV[7] ~= "" and cur[2] == ARGV[7] then
  return {2}
end
if ARGV[7] ~= "" and ARGV[11] ~= "" then
  local pstatus, pexec, ptree = string.match(ARGV[11], "^([^|]*)|([^|]*)|([^|]*)$")
  local parentExec = string.match(ARGV[7], "^[^|]*|([^|]*)|")
  if pstatus == "Terminated" and ptree == "1" and pexec == parentExec then return {-7} end
end
if status and (ARGV[10] == "1" or not isTerminal(status)) then
  return {-1, status}
end
-- A start never writes into keys it did not create: reusing the id of a finished instance, its old
-- execution goes away; with no state at all, whatever an instance's keys still hold is left over
-- (a Redis that lost or re-applied writes, a key deleted by hand) and goes too, so the new history
-- begins with this start's ExecutionStarted and nothing else.
if status then removeFromIndexes(st, KEYS[8], KEYS[9], KEYS[10], ARGV[1], KEYS[12]) end
rcall("DEL", st, KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[3] .. ":r", KEYS[13])
deleteClaims(KEYS[11])
storeClaims(KEYS[11], 19, tonumber(ARGV[18]))

local now = ARGV[4]
rcall("HSET", st,
  "name", ARGV[2], "exec", ARGV[3], "version", 0, "scheduled", 1,
  "createdAt", now, "updatedAt", now, "input", ARGV[5], "episodes", 0, "wmode", "u")
if ARGV[7] ~= "" then rcall("HSET", st, "plink", ARGV[7]) end
if ARGV[8] ~= "" then rcall("HSET", st, "startAt", ARGV[8]) end
setStatus(st, KEYS[9], ARGV[1], "Pending")
rcall("ZADD", KEYS[8], 0, indexMember("", now, ARGV[1]))
rcall("ZADD", KEYS[10], 0, indexMember(ARGV[2], now, ARGV[1]))
if ARGV[9] ~= "" then
  local sched, tick = string.match(ARGV[9], "^([^|]+)|(%d+)$")
  rcall("HSET", st, "sched", sched, "tick", tick)
  rcall("ZADD", KEYS[12], 0, indexMember(sched, now, ARGV[1]))
end
rcall("RPUSH", KEYS[3], ARGV[6])
if ARGV[12] ~= "" and ARGV[8] == "" then
  local target = ARGV[15]
  if target ~= "" and isLiveWorker(ARGV[16], target) then
    local jobId, payload = addWake(KEYS[6], KEYS[7], ARGV[1], ARGV[3], 0, now)
    handWake(ARGV[17], target, payload, ARGV[6])
    return {1, jobId, payload, 2}
  end
  local jobId = "w-" .. ARGV[1] .. "-" .. ARGV[3] .. "-0"
  addQueueJob(ARGV[12], jobId, "episode", ARGV[13], ARGV[14], now)
  return {1, jobId, "W" .. ARGV[1] .. "|" .. ARGV[3] .. "|0", 1}
end
local jobId, payload = addWake(KEYS[6], KEYS[7], ARGV[1], ARGV[3], 0, now)
if ARGV[8] ~= "" then
  -- A delayed start: the wake says when (a dispatch from the outbox queues it delayed too).
  payload = payload .. "||" .. ARGV[8]
  rcall("HSET", KEYS[6], jobId, payload)
end
return {1, jobId, payload}
