--[[
  A client's signal to an entity: appends the message to the entity's inbox (creating the entity)
  and wakes it, unless a signal with the same id arrived in the last hour (a command ioredis sent
  again after a reconnect delivers nothing twice).

  Input:
    KEYS[1] entity state hash
    KEYS[2] entity inbox list
    KEYS[3] ready zset (entities by the time they may run)
    KEYS[4] doorbell list
    KEYS[5] entity index (lex zset)
    KEYS[6] the entity's duplicate filter (zset of signal ids by time)

    ARGV[1] entity id (@name@key)
    ARGV[2] message (msgpack)
    ARGV[3] due time (ms; 0 for now)
    ARGV[4] now (ms)
    ARGV[5] signal id

  Output:
    1  delivered
    0  duplicate: nothing written
]]
local rcall = redis.call
--- @include "includes/enqueueEntityMessage"

local now = tonumber(ARGV[4])
if rcall("ZSCORE", KEYS[6], ARGV[5]) then return 0 end
rcall("ZADD", KEYS[6], now, ARGV[5])
rcall("ZREMRANGEBYSCORE", KEYS[6], "-inf", now - 3600000)
rcall("PEXPIRE", KEYS[6], 3600000)
enqueueEntityMessage(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], ARGV[3], now)
return 1
