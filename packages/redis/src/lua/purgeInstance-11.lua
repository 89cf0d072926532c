--[[
  Deletes a finished instance: state, history, inbox (and the ids of raised events it saw, under
  the inbox key's name + ":r"), index entries (the schedule index's too), its activities'
  heartbeat details and the payloads it stored apart (claim check).
  Leaves nothing behind.

  Input:
    KEYS[1] instance state hash
    KEYS[2] history stream
    KEYS[3] inbox list
    KEYS[4] pending set
    KEYS[5] wait set
    KEYS[6] partition creation index
    KEYS[7] partition status index
    KEYS[8] partition name index
    KEYS[9] claim set (tokens of the instance's payloads stored apart)
    KEYS[10] partition schedule index
    KEYS[11] the instance's heartbeat details hash

    ARGV[1] instance id

  Output:
    {1}             purged
    {-1}            no such instance
    {-5, status}    not finished (terminate it first)
]]
local rcall = redis.call
--- @include "includes/isTerminal"
--- @include "includes/removeFromIndexes"
--- @include "includes/deleteClaims"

local status = rcall("HGET", KEYS[1], "status")
if not status then return {-1} end
if not isTerminal(status) then return {-5, status} end
removeFromIndexes(KEYS[1], KEYS[6], KEYS[7], KEYS[8], ARGV[1], KEYS[10])
rcall("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[3] .. ":r", KEYS[11])
deleteClaims(KEYS[9])
return {1}
