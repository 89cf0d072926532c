--- @include "addOutboxEntry"
-- A sub-orchestration that reaches a final status queues a notification of its parent through
-- the outbox; the dispatcher reads the child's output or failure and delivers it to the parent.
local function notifyParent(stateKey, outboxKey, outboxIndexKey, instanceId, exec, now)
  if rcall("HEXISTS", stateKey, "plink") == 1 then
    local jobId = "p-" .. instanceId .. "-" .. exec
    addOutboxEntry(outboxKey, outboxIndexKey, jobId, "P" .. instanceId, now)
    return jobId
  end
  return false
end
