--[[
  Deletes an entity that is empty: no state, no message in its inbox or parked, no lock, no batch
  running. Used by the client's purge and its storage clean-up.

  Input:
    KEYS[1] entity state hash
    KEYS[2] entity inbox list
    KEYS[3] ready zset
    KEYS[4] entity index
    KEYS[5] the entity's duplicate filter

    ARGV[1] entity id
    ARGV[2] now (ms)

  Output:
    1   deleted
    0   not empty (state, messages, lock or a batch running): nothing deleted
    -1  no such entity
]]
local rcall = redis.call
local st = rcall("HMGET", KEYS[1], "version", "state", "held", "lock", "lease")
if not st[1] then
  rcall("ZREM", KEYS[4], ARGV[1])
  return -1
end
if st[2] or st[3] or st[4] or (st[5] and tonumber(st[5]) > tonumber(ARGV[2])) or rcall("LLEN", KEYS[2]) > 0 then return 0 end
rcall("DEL", KEYS[1], KEYS[2], KEYS[5])
rcall("ZREM", KEYS[3], ARGV[1])
rcall("ZREM", KEYS[4], ARGV[1])
return 1
