--[[
  Claims entities whose time has come and loads each one's batch: the entities of the ready zset
  with a score <= now (at most ARGV[2]) are leased (score and `lease` = now + lease time, so no
  other worker claims them meanwhile and deliveries leave them alone), and for each the script
  returns its version, state, parked messages, lock and up to ARGV[4] inbox messages: one round
  trip for the claim and the loads of many entities.

  Input:
    KEYS[1] ready zset
    KEYS[2] entity state key prefix (an entity's hash is this .. id)
    KEYS[3] entity inbox key prefix
    KEYS[4] instance state key prefix (the lock holder's state, to find a lock whose holder ended)

    ARGV[1] now (ms)
    ARGV[2] most entities to claim
    ARGV[3] lease (ms)
    ARGV[4] most messages per entity
    ARGV[5] "1": the hub has several partitions: the lock holder may be in another one, whose keys
            this script must not touch; its execution and status are read by the caller instead

  Output:
    {next, e1, e2, ...}: next = the earliest score left in the ready zset ("" when empty); each
    e = {entity id, version, state|nil, held|nil, lock|nil, holder exec|nil, holder status|nil,
    {messages...}}
]]
local rcall = redis.call
local now, lease, maxMsgs = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = rcall("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, tonumber(ARGV[2]))
local out = {""}
for _, id in ipairs(ids) do
  local h = KEYS[2] .. id
  local st = rcall("HMGET", h, "version", "state", "held", "lock")
  if not st[1] then
    rcall("ZREM", KEYS[1], id)
  else
    rcall("ZADD", KEYS[1], now + lease, id)
    rcall("HSET", h, "lease", now + lease)
    local hx, hs = false, false
    if st[4] and ARGV[5] ~= "1" then
      local holder = string.match(st[4], "^([^|]*)|")
      local hst = rcall("HMGET", KEYS[4] .. holder, "exec", "status")
      hx, hs = hst[1] or false, hst[2] or false
    end
    local msgs = rcall("LRANGE", KEYS[3] .. id, 0, maxMsgs - 1)
    out[#out + 1] = {id, st[1], st[2] or false, st[3] or false, st[4] or false, hx, hs, msgs}
  end
end
local first = rcall("ZRANGE", KEYS[1], 0, 0, "WITHSCORES")
if first[2] then out[1] = first[2] end
return out
