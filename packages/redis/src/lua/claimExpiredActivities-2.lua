--[[
  The sweep's pass over activity deadlines: takes (removes and returns) the recorded attempts
  whose deadline is at or before ARGV[1], at most ARGV[2] of them, oldest deadline first. Each is
  taken by one caller only, so of several workers sweeping at once one fails the task.

  Input:
    KEYS[1] partition activity deadlines (zset: "<instance>|<execution>|<task id>" by deadline, ms)
    KEYS[2] partition activity attempts (hash: the same members -> attempt info)

    ARGV[1] latest deadline to take (epoch ms)
    ARGV[2] most attempts to take

  Output:
    {member1, deadline1, info1, member2, ...}   info is "" when it was missing
]]
local rcall = redis.call
local expired = rcall("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "WITHSCORES", "LIMIT", 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #expired, 2 do
  local member = expired[i]
  out[#out + 1] = member
  out[#out + 1] = expired[i + 1]
  out[#out + 1] = rcall("HGET", KEYS[2], member) or ""
  rcall("ZREM", KEYS[1], member)
  rcall("HDEL", KEYS[2], member)
end
return out
