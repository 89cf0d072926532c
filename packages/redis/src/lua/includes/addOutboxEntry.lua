-- Writes one entry to the partition outbox: a hash (job id -> payload) and a zset (job id by time)
-- that the recovery sweep reads oldest first.
local function addOutboxEntry(outboxKey, outboxIndexKey, jobId, payload, now)
  rcall("HSET", outboxKey, jobId, payload)
  rcall("ZADD", outboxIndexKey, now, jobId)
end
