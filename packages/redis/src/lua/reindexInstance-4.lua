--[[
  Makes an instance's index entries match its state (a repair of the checker): the creation index
  and the name index hold it, the status index holds it under its current status and under no
  other. Read and written in one step, so a status change running at the same time cannot be
  undone. When the instance is gone (or was re-created at another time), the entries of the
  creation time the caller found are removed instead (the name index entry of a gone instance
  cannot be found without its name and stays: list() skips it).

  Input:
    KEYS[1] instance state hash
    KEYS[2] partition creation index (lex zset)
    KEYS[3] partition status index (lex zset)
    KEYS[4] partition name index (lex zset)

    ARGV[1] instance id
    ARGV[2] creation time (ms) of entries found in an index, to remove when they are not the
            instance's own ("" for none)

  Output:
    {n}   index entries added or removed (0: they were right)
]]
local rcall = redis.call
--- @include "includes/indexMember"

local STATUSES = {"Pending", "Running", "Completed", "Failed", "Terminated", "ContinuedAsNew", "Suspended"}
local st, id = KEYS[1], ARGV[1]
local cur = rcall("HMGET", st, "status", "createdAt", "name")
local status, createdAt, name = cur[1], cur[2], cur[3]
local changed = 0

-- Entries of another creation time (a gone instance, or a stale entry) go.
local seen = ARGV[2]
if seen ~= "" and (not status or tonumber(seen) ~= tonumber(createdAt)) then
  changed = changed + rcall("ZREM", KEYS[2], indexMember("", seen, id))
  for _, s in ipairs(STATUSES) do changed = changed + rcall("ZREM", KEYS[3], indexMember(s, seen, id)) end
  if name then changed = changed + rcall("ZREM", KEYS[4], indexMember(name, seen, id)) end
end
if not status or not createdAt then return {changed} end

changed = changed + rcall("ZADD", KEYS[2], 0, indexMember("", createdAt, id))
if name then changed = changed + rcall("ZADD", KEYS[4], 0, indexMember(name, createdAt, id)) end
for _, s in ipairs(STATUSES) do
  if s == status then
    changed = changed + rcall("ZADD", KEYS[3], 0, indexMember(s, createdAt, id))
  else
    changed = changed + rcall("ZREM", KEYS[3], indexMember(s, createdAt, id))
  end
end
return {changed}
