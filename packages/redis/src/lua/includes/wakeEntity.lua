-- Makes an entity ready to run at `at` (ms): adds it to the ready zset unless a batch of it holds a
-- lease (its commit looks at the inbox again) or it is ready earlier already; rings the doorbell
-- when it is ready now, so that a waiting entity worker claims it.
local function wakeEntity(h, ready, bell, entityId, at, now)
  local lease = rcall("HGET", h, "lease")
  if lease and tonumber(lease) > now then return end
  local cur = rcall("ZSCORE", ready, entityId)
  if cur and tonumber(cur) <= at then return end
  rcall("ZADD", ready, at, entityId)
  if at <= now then
    rcall("LPUSH", bell, entityId)
    rcall("LTRIM", bell, 0, 63)
  end
end
