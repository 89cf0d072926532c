--[[
  Delivers one event to an instance's inbox (an activity result, a timer firing, a raised event)
  and decides, in the same step, whether the orchestrator must be woken: the fan-in counter.

  Input:
    KEYS[1] instance state hash
    KEYS[2] inbox list
    KEYS[3] pending set (scheduled sequence numbers without a result yet)
    KEYS[4] wait set (sequence numbers the blocked code waits on, when not all open tasks)
    KEYS[5] partition outbox hash
    KEYS[6] partition outbox index
    KEYS[7] history stream
    KEYS[8] claim set (tokens of the instance's payloads stored apart)
    KEYS[9] the worker registry's index (a worker's entry is this .. ":" .. its id: HubKeys.worker)
    KEYS[10] sticky stream prefix (a worker's stream of wake-ups handed to it is this .. its id)

    ARGV[1] instance id
    ARGV[2] execution id the event belongs to ("" = the current one)
    ARGV[3] kind: "c" task completed, "f" task failed, "e" other event
    ARGV[4] sequence number; for kind "e" the event's id, or "": a raised event whose id the
            instance has seen (the last 100, for an hour) is dropped as a duplicate (ioredis sends a
            command again after a reconnect when the old connection lost its reply). The ids are
            kept in a sorted set under the inbox key's name + ":r"
    ARGV[5] event (msgpack)
    ARGV[6] now (ms)
    ARGV[7] "1": when this wakes the orchestrator, also return what its episode needs (the caller
            runs the episode itself, saving the load's round trip)
    ARGV[8] with ARGV[7]: the first history entry to return ("-" for all, "(<id>" after a known one)
    ARGV[9] the id of the worker that delivers ("" for a client)
    ARGV[10] M: number of payloads stored apart (claim check: the event's payload when it is large)
    ARGV[11...] M pairs: token, encoded payload

  Output:
    {1, wakeJobId, wakePayload, inboxLength}   appended; wakeJobId is "" when no wake-up was needed
                     (then nothing follows it); inboxLength: the inbox's entries with this one
    {1, wakeJobId, wakePayload, state (HGETALL), inbox (LRANGE), history (XRANGE), history length (XLEN)}   with ARGV[7]
    {2, wakeJobId, wakePayload}   the wake-up was handed to the worker that keeps the instance's
                     session (state field `sw`, written by its commit; another worker than the
                     caller, whose registry entry is live): XADD to its sticky stream. The wake's
                     outbox entry stays, so if that worker does not run the episode, the sweep
                     queues it (the fallback); its commit removes it. The caller dispatches nothing.
    {0}              dropped: that task already has its result, or that event id was delivered (at-least-once delivery)
    {-1}             no such instance
    {-3, status}     the instance has finished
    {-4}             the event belongs to an older execution
]]
local rcall = redis.call
--- @include "includes/isTerminal"
--- @include "includes/isCounted"
--- @include "includes/addWake"
--- @include "includes/storeClaims"
--- @include "includes/handWake"

local st = KEYS[1]
local fields = rcall("HMGET", st, "status", "exec", "scheduled", "wmode", "wcov", "version", "sw", "need")
local status, exec, scheduled, wmode, wcov, version, sw = fields[1], fields[2], fields[3], fields[4], fields[5], fields[6], fields[7]
if not status then return {-1} end
if isTerminal(status) then return {-3, status} end
if ARGV[2] ~= "" and ARGV[2] ~= exec then return {-4} end

local kind, seq = ARGV[3], ARGV[4]
if kind ~= "e" then
  if rcall("SREM", KEYS[3], seq) == 0 then return {0} end
elseif seq ~= "" then
  local seen = KEYS[2] .. ":r"
  if rcall("ZADD", seen, "NX", ARGV[6], seq) == 0 then return {0} end
  rcall("ZREMRANGEBYRANK", seen, 0, -101)
  rcall("PEXPIRE", seen, 3600000)
  seq = ""
end
local entry = kind .. seq .. "|" .. ARGV[5]
local inboxLength = rcall("RPUSH", KEYS[2], entry)
if ARGV[10] ~= "0" then storeClaims(KEYS[8], 11, tonumber(ARGV[10])) end

-- An episode is queued or running: its commit looks at the inbox tail and decides.
-- Suspended: events wait in the inbox; resuming wakes the orchestrator.
if scheduled == "1" or status == "Suspended" then
  rcall("HSET", st, "updatedAt", ARGV[6])
  return {1, ""}
end

local progress = false
-- The state fields this delivery writes, in one HSET: a counted result takes one off `need` (the
-- results the code still waits for; as HINCRBY would, a missing count counts as 0).
local writes = {"updatedAt", ARGV[6]}
if kind == "e" or wmode == "u" or not wmode then
  progress = true
elseif isCounted(KEYS[4], wcov, seq) then
  if kind == "f" then
    progress = true
  else
    local need = (tonumber(fields[8]) or 0) - 1
    writes[3], writes[4] = "need", need
    if need <= 0 then progress = true end
  end
end
if not progress then
  rcall("HSET", st, unpack(writes))
  return {1, ""}
end

writes[#writes + 1] = "scheduled"
writes[#writes + 1] = 1
rcall("HSET", st, unpack(writes))
local jobId, payload = addWake(KEYS[5], KEYS[6], ARGV[1], exec, version, ARGV[6])
if sw and sw ~= ARGV[9] and isLiveWorker(KEYS[9], sw) then
  -- Sticky: the worker that keeps the session runs the episode, resuming the code it holds. The
  -- inbox entry travels along when it is the whole inbox (small, not stored apart): no load.
  local carried = ""
  if inboxLength == 1 and ARGV[10] == "0" and #entry <= 8192 then carried = entry end
  handWake(KEYS[10], sw, payload, carried)
  return {2, jobId, payload}
end
if ARGV[7] == "1" then
  return {1, jobId, payload, rcall("HGETALL", st), rcall("LRANGE", KEYS[2], 0, -1), rcall("XRANGE", KEYS[7], ARGV[8], "+"), rcall("XLEN", KEYS[7])}
end
return {1, jobId, payload, inboxLength}
