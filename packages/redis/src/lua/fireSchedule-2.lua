--[[
  Decides what one tick of a schedule does, under its overlap policy, and records it: start an
  instance (whose id the caller derived from the schedule id and the tick, so a tick handled twice
  starts it once: the start refuses an id that exists), skip the tick, or buffer it until the
  instance the schedule started last has finished.

  Input:
    KEYS[1] the schedule's hash
    KEYS[2] instance state key prefix: an instance's state hash is this .. instance id

    ARGV[1] mode: "tick" (a tick of the schedule), "trigger" (started by hand: also while paused),
            "buffer" (the buffered tick, checked again)
    ARGV[2] the tick (epoch ms)
    ARGV[3] the instance id for the tick
    ARGV[4] overlap policy for this tick ("" for the schedule's): skip | bufferOne | allowAll
    ARGV[5] "1": the hub has several partitions; the instances may be in other partitions, whose
            keys this script must not touch (KEYS[2] is not read). The caller read them instead:
    ARGV[6] "1" when the tick's instance exists
    ARGV[7] the schedule's last instance as the caller read it ("" for none)
    ARGV[8] that instance's status ("" when it is gone)

  Output:
    {1}    start it (recorded as the schedule's last instance; also when it already was: a tick
           handled again after its worker died)
    {2}    buffered: start it once the last instance has finished (the caller queues the check)
    {3}    (buffer) still buffered: the last instance is still running
    {4}    its instance exists already (started by the tick's own job, or by a catch-up): nothing to do
    {0}    skipped (overlap policy, or the buffer is taken)
    {-1}   no such schedule
    {-2}   paused: skipped
    {-3}   (buffer) no longer the buffered tick: nothing to do
    {-4}   (several partitions) the last instance is not the one the caller read: read again
]]
local rcall = redis.call
--- @include "includes/isTerminal"

local key, mode, tick, id = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local s = rcall("HMGET", key, "name", "paused", "overlap", "last", "buf")
if not s[1] then return {-1} end
if s[4] == id then return {1} end
local buffered = s[5]
local crossing = ARGV[5] == "1"
local exists
if crossing then exists = ARGV[6] == "1" else exists = rcall("EXISTS", KEYS[2] .. id) == 1 end
if exists then
  if buffered == tick then rcall("HDEL", key, "buf") end
  return {4}
end
if mode == "buffer" and buffered ~= tick then return {-3} end
if mode ~= "trigger" and s[2] == "1" then
  if mode == "buffer" then rcall("HDEL", key, "buf") end
  rcall("HINCRBY", key, "skipped", 1)
  return {-2}
end
local overlap = ARGV[4] ~= "" and ARGV[4] or s[3] or "skip"
local running = false
if s[4] and overlap ~= "allowAll" then
  local status
  if crossing then
    if s[4] ~= ARGV[7] then return {-4} end
    status = ARGV[8] ~= "" and ARGV[8] or false
  else
    status = rcall("HGET", KEYS[2] .. s[4], "status")
  end
  running = status ~= false and not isTerminal(status)
end

local function skip()
  rcall("HINCRBY", key, "skipped", 1)
  return {0}
end

if mode == "buffer" then
  if running and overlap == "bufferOne" then return {3} end
  rcall("HDEL", key, "buf")
  -- The policy was changed meanwhile: the buffered tick is dropped.
  if running then return skip() end
else
  -- One tick waits already (it starts next): this one finds the buffer taken.
  if overlap == "bufferOne" and buffered and buffered ~= tick then return skip() end
  if running then
    if overlap == "bufferOne" then
      rcall("HSET", key, "buf", tick)
      return {2}
    end
    return skip()
  end
  if buffered == tick then rcall("HDEL", key, "buf") end
end
rcall("HSET", key, "last", id, "lastTick", tick)
rcall("HINCRBY", key, "started", 1)
return {1}
