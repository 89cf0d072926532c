--[[
  Makes an entity run now (if it exists and no batch of it is running): the client's release of
  orphaned locks uses it, since the batch releases a lock whose holder has ended.

  Input:
    KEYS[1] entity state hash
    KEYS[2] ready zset
    KEYS[3] doorbell list

    ARGV[1] entity id
    ARGV[2] now (ms)

  Output:
    1 woken (or running already), 0 no such entity
]]
local rcall = redis.call
--- @include "includes/wakeEntity"
if rcall("EXISTS", KEYS[1]) == 0 then return 0 end
wakeEntity(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[2]))
return 1
