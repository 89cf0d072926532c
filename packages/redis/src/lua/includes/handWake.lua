-- The sticky hand-off of a wake-up (deliverEvent, startInstance): whether worker `id` is live (its
-- registry entry, `registryIndex .. ":" .. id`), and the wake-up (its outbox payload, and the inbox
-- entry that travels with it or "") added to that worker's stream, capped at about 10,000 entries
-- and kept an hour after the last.
local function isLiveWorker(registryIndex, id)
  return rcall("EXISTS", registryIndex .. ":" .. id) == 1
end

local function handWake(streamPrefix, id, payload, entry)
  local stream = streamPrefix .. id
  rcall("XADD", stream, "MAXLEN", "~", 10000, "*", "w", payload, "e", entry)
  rcall("PEXPIRE", stream, 3600000)
end
