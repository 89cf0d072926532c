-- Adds a job to one of the partition's BullMQ queues (activity jobs from commitEpisode, a first
-- episode's wake from startInstance) the way BullMQ's addStandardJob script does for a job with a custom id, no delay, no priority, no parent and no deduplication
-- (bullmq 6.x): the job hash, the "added" event, LPUSH to wait, the marker unless the queue is
-- paused or at its global concurrency, the "waiting" event. A job id the queue holds already is
-- left alone (BullMQ would only emit "duplicated"). The job counter is not touched (only ids
-- BullMQ generates use it). test/src/activity-job-layout.test.ts compares the result with
-- Queue.add's, key by key.
--   base: the queue's key prefix ("<prefix>:activity:"); optsTail: the job options as JSON
--   without jobId, "{...}"; now: the job's timestamp (ms).
local function addQueueJob(base, jobId, name, data, optsTail, now)
  local jobKey = base .. jobId
  if rcall("EXISTS", jobKey) == 1 then return end
  local meta, events = base .. "meta", base .. "events"
  -- One read of the queue's meta for the events' cap and the marker (nothing in between writes it).
  local q = rcall("HMGET", meta, "opts.maxLenEvents", "paused", "concurrency")
  local maxEvents = q[1]
  if not maxEvents then
    maxEvents = 10000
    rcall("HSET", meta, "opts.maxLenEvents", maxEvents)
  end
  local opts = '{"jobId":' .. cjson.encode(jobId) .. (optsTail == "{}" and "}" or ("," .. string.sub(optsTail, 2)))
  rcall("HMSET", jobKey, "name", name, "data", data, "opts", opts, "timestamp", now, "delay", 0, "priority", 0)
  rcall("XADD", events, "*", "event", "added", "jobId", jobId, "name", name)
  local pausedOrMaxed = q[2] and true or (q[3] and rcall("LLEN", base .. "active") >= tonumber(q[3])) or false
  rcall("LPUSH", base .. "wait", jobId)
  if not pausedOrMaxed then rcall("ZADD", base .. "marker", 0, "0") end
  rcall("XADD", events, "MAXLEN", "~", maxEvents, "*", "event", "waiting", "jobId", jobId)
end
