--- @include "wakeEntity"
-- Appends one message to an entity's inbox (creating the entity: state hash and index entry) and
-- wakes it at the message's time (`due`, 0 for now).
local function enqueueEntityMessage(h, q, ready, bell, index, entityId, msg, due, now)
  if rcall("HSETNX", h, "version", 0) == 1 then
    rcall("HSET", h, "createdAt", now, "updatedAt", now)
    rcall("ZADD", index, 0, entityId)
  end
  rcall("RPUSH", q, msg)
  local at = tonumber(due) or 0
  if at < now then at = now end
  wakeEntity(h, ready, bell, entityId, at, now)
end

-- An entity message that travels as an outbox pair of an orchestration's commit ("e-..." job id):
-- its payload is "E" and 8 fields, each <u32 length><bytes>: state key, inbox key, ready key, bell
-- key, index key, entity id, message, due; written by the backend (the keys built in keys.ts,
-- under the hub's hash tag).
local function enqueueEntityEnvelope(payload, now)
  local e, pos = {}, 2
  for k = 1, 8 do
    local n = struct.unpack(">I4", payload, pos)
    e[k] = string.sub(payload, pos + 4, pos + 3 + n)
    pos = pos + 4 + n
  end
  enqueueEntityMessage(e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[8], now)
end
