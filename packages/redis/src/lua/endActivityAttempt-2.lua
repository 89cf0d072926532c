--[[
  Removes an activity attempt's deadline once the attempt is over (its result delivered, or its
  timeout handled), unless another attempt of the task recorded its own since.

  Input:
    KEYS[1] partition activity deadlines (zset)
    KEYS[2] partition activity attempts (hash)

    ARGV[1] deadline member "<instance>|<execution>|<task id>"
    ARGV[2] the attempt's info, as recorded

  Output:
    1 removed, 0 not this attempt's (or none)
]]
local rcall = redis.call
if rcall("HGET", KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
rcall("ZREM", KEYS[1], ARGV[1])
rcall("HDEL", KEYS[2], ARGV[1])
return 1
