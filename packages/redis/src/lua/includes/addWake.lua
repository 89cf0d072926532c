--- @include "addOutboxEntry"
-- Queues a wake-up (returns job id and payload) of the orchestrator for (instance, execution, version) through the outbox.
-- The job id is unique per version, so re-dispatching the same entry is idempotent and a wake
-- written while an episode runs never collides with that episode's own job.
local function addWake(outboxKey, outboxIndexKey, instanceId, exec, version, now)
  local jobId = "w-" .. instanceId .. "-" .. exec .. "-" .. version
  local payload = "W" .. instanceId .. "|" .. exec .. "|" .. version
  addOutboxEntry(outboxKey, outboxIndexKey, jobId, payload, now)
  return jobId, payload
end
