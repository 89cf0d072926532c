--[[
  Registers a worker in its task hub, or renews its entry (the heartbeat). The entry is a string
  key with a time to live: when the process dies it is gone once the TTL runs out, with no clean-up.
  The index set lists the worker ids; it lives at least as long as its longest-lived entry, so when
  every worker is gone the index goes too. Ids whose entry has expired are removed from the index
  here (and by readWorkers), so dead workers do not accumulate.

  Input:
    KEYS[1] worker index (set of worker ids)
    KEYS[2] this worker's entry (string; "<index key>:<worker id>", HubKeys.worker)

    ARGV[1] worker id
    ARGV[2] entry (JSON)
    ARGV[3] expiry (ms): the entry's time to live

  Output:
    {n}   ids of expired entries removed from the index
]]
local rcall = redis.call
local index, ttl = KEYS[1], tonumber(ARGV[3])

local removed = 0
for _, id in ipairs(rcall("SMEMBERS", index)) do
  if id ~= ARGV[1] and rcall("EXISTS", index .. ":" .. id) == 0 then
    rcall("SREM", index, id)
    removed = removed + 1
  end
end

rcall("SET", KEYS[2], ARGV[2], "PX", ttl)
rcall("SADD", index, ARGV[1])
local left = rcall("PTTL", index)
if left < ttl then rcall("PEXPIRE", index, ttl) end
return {removed}
