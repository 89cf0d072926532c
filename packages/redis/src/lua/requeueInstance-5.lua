--[[
  Re-queues an instance whose wake-up was lost (found by the checker or by the worker's sweep).
  It must still be what the caller saw: not finished, not suspended, same execution and version,
  same `scheduled` flag, and no wake for this version in the outbox. Then:

    - `scheduled` = 0 (idle): requeued only when the inbox holds an event that lets the code
      progress (the test deliverEvent and commitEpisode apply: any raised event; any result under
      an unknown wait; a failure of an awaited task; a result of an awaited task once nothing more
      is needed), i.e. a wake that should have been written was not;
    - `scheduled` = 1: the caller found no orchestrator job for this version in BullMQ (it cannot
      be checked here), i.e. the wake was written and then lost.

  The version is bumped: an episode that was running or queued after all is dropped at its commit
  (stale), and the new wake's job id (`w-<id>-<execution>-<version + 1>`) is one BullMQ has never
  seen, so it cannot be refused as a duplicate of a failed or completed job.

  Input:
    KEYS[1] instance state hash
    KEYS[2] inbox list
    KEYS[3] wait set
    KEYS[4] partition outbox hash
    KEYS[5] partition outbox index

    ARGV[1] instance id
    ARGV[2] execution id the caller saw
    ARGV[3] version the caller saw
    ARGV[4] `scheduled` the caller saw: "0" or "1"
    ARGV[5] now (ms)

  Output:
    {1, wakeJobId, wakePayload}   re-queued: `scheduled` = 1, version + 1, a wake in the outbox
                                  (for a delayed start not run yet, with its `startAt`)
    {0, reason}                   not stuck, nothing written: "scheduled" (the flag changed),
                                  "wake-queued" (a wake for this version is in the outbox),
                                  "no-progress" (nothing in the inbox lets the code progress)
    {-1}                          no such instance
    {-2}                          execution or version moved: something else made progress
    {-3, status}                  finished
    {-5, status}                  suspended (events wait for resume)
]]
local rcall = redis.call
--- @include "includes/isTerminal"
--- @include "includes/isCounted"
--- @include "includes/addWake"

local st = KEYS[1]
local cur = rcall("HMGET", st, "status", "exec", "version", "scheduled", "wmode", "wcov", "need", "startAt")
local status, exec, seenVersion = cur[1], cur[2], cur[3]
if not status then return {-1} end
if isTerminal(status) then return {-3, status} end
if status == "Suspended" then return {-5, status} end
if exec ~= ARGV[2] or seenVersion ~= ARGV[3] then return {-2} end
local scheduled = cur[4] == "1" and "1" or "0"
if scheduled ~= ARGV[4] then return {0, "scheduled"} end
local instanceId, now = ARGV[1], ARGV[5]
if rcall("HEXISTS", KEYS[4], "w-" .. instanceId .. "-" .. exec .. "-" .. seenVersion) == 1 then return {0, "wake-queued"} end

if scheduled == "0" then
  local wmode, wcov, need = cur[5], cur[6], tonumber(cur[7] or "0")
  local progress = false
  local len = rcall("LLEN", KEYS[2])
  -- In chunks: an inbox may hold the results of a large fan-out.
  for from = 0, len - 1, 1000 do
    for _, entry in ipairs(rcall("LRANGE", KEYS[2], from, from + 999)) do
      local kind = string.sub(entry, 1, 1)
      if kind == "e" then
        progress = true
      elseif kind == "c" or kind == "f" then
        if not wmode or wmode == "u" then
          progress = true
        else
          local sep = string.find(entry, "|", 1, true)
          if isCounted(KEYS[3], wcov, string.sub(entry, 2, sep - 1)) and (kind == "f" or need <= 0) then progress = true end
        end
      end
      -- kind "n" (suspend/resume notes) never lets the code progress
      if progress then break end
    end
    if progress then break end
  end
  if not progress then return {0, "no-progress"} end
end

local version = tonumber(seenVersion) + 1
rcall("HSET", st, "version", version, "scheduled", 1, "updatedAt", now)
local jobId, payload = addWake(KEYS[4], KEYS[5], instanceId, exec, version, now)
if status == "Pending" and cur[8] then
  -- A delayed start that has not run yet: the new wake keeps its time, as startInstance's did.
  payload = payload .. "||" .. cur[8]
  rcall("HSET", KEYS[4], jobId, payload)
end
return {1, jobId, payload}
