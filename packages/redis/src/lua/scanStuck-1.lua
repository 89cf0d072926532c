--[[
  The read of the worker sweep's stuck-instance pass (StuckSweeper in checker.ts): of a page of
  instance ids, the ones the sweep must look at further, with what it decides on. Read-only; one
  call instead of three commands per instance.

  Input:
    KEYS[1] partition status index (its slot is the partition's: the keys built below share it)
    ARGV[1] the partition's key base (HubKeys.base: state "<base>:i:<id>", inbox ":n:", pending ":p:")
    ARGV[2] now (ms)
    ARGV[3] grace period (ms): an instance unchanged for that long may have lost a wake or a task
    ARGV[4] at most this many pending tasks returned per instance
    ARGV[5...] instance ids

  Output: per candidate, {id, exec, version, scheduled, updatedAt, inboxLength, pending tasks}: an
  instance that is not finished nor suspended, and either idle ("scheduled" not 1) with inbox
  entries, or unchanged for the grace period (scheduled: its wake may be lost; pending tasks: they
  may be lost). inboxLength is read only when not scheduled, the pending tasks only when unchanged
  for the grace period (SRANDMEMBER).
]]
local rcall = redis.call
--- @include "includes/isTerminal"
local base, now, grace, lookups = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for k = 5, #ARGV do
  local id = ARGV[k]
  local f = rcall("HMGET", base .. ":i:" .. id, "status", "exec", "version", "scheduled", "updatedAt")
  local status, exec = f[1], f[2]
  if status and exec and not isTerminal(status) and status ~= "Suspended" then
    local scheduled = f[4] or ""
    local old = now - (tonumber(f[5]) or 0) >= grace
    local inboxLength = 0
    if scheduled ~= "1" then inboxLength = rcall("LLEN", base .. ":n:" .. id) end
    local pending = {}
    if old then pending = rcall("SRANDMEMBER", base .. ":p:" .. id, lookups) end
    if #pending > 0 or inboxLength > 0 or (scheduled == "1" and old) then
      out[#out + 1] = {id, exec, f[3] or "", scheduled, f[5] or "", inboxLength, pending}
    end
  end
end
return out
