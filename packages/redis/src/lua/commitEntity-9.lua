--[[
  Commits one batch of an entity atomically: checks its version (optimistic concurrency: a batch
  whose lease ran out and that another worker ran again writes nothing), removes the messages it
  consumed from the inbox, writes the new state, parked messages and lock, queues the responses to
  orchestrations through the outbox, appends the signals the operations sent to their entities'
  inboxes, and decides when the entity runs next.

  Input:
    KEYS[1] entity state hash
    KEYS[2] entity inbox list
    KEYS[3] ready zset
    KEYS[4] doorbell list
    KEYS[5] partition outbox hash
    KEYS[6] partition outbox index
    KEYS[7] entity index
    KEYS[8] entity state key prefix (signal targets)
    KEYS[9] entity inbox key prefix

    ARGV[1] A: msgpack array of strings:
      A[1]  expected version
      A[2]  inbox messages consumed (removed from the head)
      A[3]  now (ms)
      A[4]  entity id
      A[5]  state: "s" set to ARGV[2], "d" delete, "k" keep
      A[6]  parked messages: "s" set to ARGV[3], "d" none
      A[7]  lock holder ("<instance>|<execution>|<request task>"), "" for none
      A[8]  earliest time a parked message may run ("" for none): a scheduled signal's time, or
            when to look again at a lock whose holder may have ended
      A[9]  O: outbox pairs (job id, payload) after ARGV[3]
      A[10] S: signals (target entity id, message, due) after them
      A[11] operations run
      A[12] batch window (ms): with fewer than A[13] messages left, the next batch waits this long
            for more to arrive (batching under load)
      A[13] the most messages a batch takes
    ARGV[2] state (msgpack)
    ARGV[3] parked messages (msgpack array)
    ARGV[4...] O pairs, then S triples

  Output:
    {1, version, left}  committed; left = inbox messages left
    {-2}                stale: nothing written
]]
local rcall = redis.call
--- @include "includes/addOutboxEntry"
--- @include "includes/enqueueEntityMessage"

local A = cmsgpack.unpack(ARGV[1])
local h, q, ready, bell = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if rcall("HGET", h, "version") ~= A[1] then return {-2} end
local now, id = tonumber(A[3]), A[4]
local consumed = tonumber(A[2])
if consumed > 0 then rcall("LTRIM", q, consumed, -1) end
if A[5] == "s" then rcall("HSET", h, "state", ARGV[2]) elseif A[5] == "d" then rcall("HDEL", h, "state") end
if A[6] == "s" then rcall("HSET", h, "held", ARGV[3]) else rcall("HDEL", h, "held") end
if A[7] ~= "" then
  if rcall("HGET", h, "lock") ~= A[7] then rcall("HSET", h, "lock", A[7], "lockedAt", now) end
else
  rcall("HDEL", h, "lock", "lockedAt")
end
local version = tonumber(A[1]) + 1
rcall("HSET", h, "version", version, "updatedAt", now)
rcall("HINCRBY", h, "ops", tonumber(A[11]))
rcall("HINCRBY", h, "batches", 1)

local i = 4
for _ = 1, tonumber(A[9]) do
  addOutboxEntry(KEYS[5], KEYS[6], ARGV[i], ARGV[i + 1], now)
  i = i + 2
end
for _ = 1, tonumber(A[10]) do
  local t = ARGV[i]
  enqueueEntityMessage(KEYS[8] .. t, KEYS[9] .. t, ready, bell, KEYS[7], t, ARGV[i + 1], ARGV[i + 2], now)
  i = i + 3
end

-- When does the entity run next?
local left = rcall("LLEN", q)
if left > 0 then
  local at = now
  if left < tonumber(A[13]) then at = now + tonumber(A[12]) end
  if at > now then
    -- Held for the window: deliveries meanwhile leave it alone (see wakeEntity).
    rcall("HSET", h, "lease", at)
    rcall("ZADD", ready, at, id)
  else
    rcall("HDEL", h, "lease")
    rcall("ZADD", ready, at, id)
    rcall("LPUSH", bell, id)
    rcall("LTRIM", bell, 0, 63)
  end
elseif A[8] ~= "" then
  rcall("HDEL", h, "lease")
  rcall("ZADD", ready, tonumber(A[8]), id)
else
  rcall("HDEL", h, "lease")
  rcall("ZREM", ready, id)
end
return {1, version, left}
