--[[
  Records an activity attempt's heartbeat: its details (for the next attempt of the task) and its
  deadline (for the sweep, which fails the task of an attempt whose worker died or hangs), and
  tells the worker whether the task still waits for this attempt. A worker also calls it without
  details to record a deadline alone (at the start of an attempt with a heartbeat timeout, and once
  an attempt has run for a while).

  Input:
    KEYS[1] instance state hash
    KEYS[2] pending set
    KEYS[3] the instance's heartbeat details hash
    KEYS[4] partition activity deadlines (zset: "<instance>|<execution>|<task id>" by deadline, ms)
    KEYS[5] partition activity attempts (hash: the same members -> attempt info)

    ARGV[1] execution id
    ARGV[2] task id
    ARGV[3] details field "<execution>|<task id of the first attempt>" ("" when there are no details to store)
    ARGV[4] details (msgpack)
    ARGV[5] deadline member ("" to record no deadline)
    ARGV[6] deadline (epoch ms)
    ARGV[7] attempt info "<attempt>|<start ms>|<start-to-close ms>|<heartbeat ms>|<activity name>"
    ARGV[8] how long the details hash is kept after its last write (ms)

  Output:
    {1}           recorded
    {0}           the task no longer waits for a result (it has one: another attempt, or a timeout)
    {-1}          no such instance
    {-3, status}  the instance has finished
    {-4}          the task belongs to an older execution
    Nothing is recorded in the last four cases, and this attempt's deadline is removed.
]]
local rcall = redis.call
--- @include "includes/isTerminal"

local cur = rcall("HMGET", KEYS[1], "status", "exec")
local code
if not cur[1] then
  code = {-1}
elseif isTerminal(cur[1]) then
  code = {-3, cur[1]}
elseif cur[2] ~= ARGV[1] then
  code = {-4}
elseif rcall("SISMEMBER", KEYS[2], ARGV[2]) == 0 then
  code = {0}
end
if code then
  if ARGV[5] ~= "" and rcall("HGET", KEYS[5], ARGV[5]) == ARGV[7] then
    rcall("ZREM", KEYS[4], ARGV[5])
    rcall("HDEL", KEYS[5], ARGV[5])
  end
  return code
end
if ARGV[3] ~= "" then
  rcall("HSET", KEYS[3], ARGV[3], ARGV[4])
  rcall("PEXPIRE", KEYS[3], ARGV[8])
end
if ARGV[5] ~= "" then
  rcall("ZADD", KEYS[4], ARGV[6], ARGV[5])
  rcall("HSET", KEYS[5], ARGV[5], ARGV[7])
end
return {1}
