--[[
  Removes outbox entries whose work is safe in this Redis: a job that BullMQ holds here, or work
  that is done (the task has its result, the wake's version has passed, the child exists). An
  entry whose work is neither stays for the sweep, which queues it again.

  Why the check: an ack is sent once BullMQ acknowledged the add, but Redis can lose an
  acknowledged write (a crash with `appendfsync everysec`) and the ack, queued or resent by the
  client across the reconnect, then reaches a Redis that no longer has the job. A plain HDEL would
  delete the only durable record of that work.

  Input:
    KEYS[1] partition outbox hash
    KEYS[2] partition outbox index (zset)
    KEYS[3] activity queue key prefix: a job's hash is this .. job id
    KEYS[4] orchestrator queue key prefix: a job's hash is this .. job id
    KEYS[5] instance state key prefix: an instance's state hash is this .. instance id
    KEYS[6] pending set key prefix: an instance's pending set is this .. instance id

    ARGV[1] mode: "ack" (remove what is safe, keep the rest) or "sweep" (the same, and return
            what was kept with its payload; a batch's payload reduced to its entries not safe yet,
            and rewritten so), or "done" (remove them: the caller delivered them, awaited)
    ARGV[2] "1": the hub has several partitions. Entries that name another instance (S a child's
            start, P a parent's notification, R an entity's response, M a message to an entity of
            another partition) may point into another
            partition, whose keys this script must not touch: they are never safe here, only
            removed by "done" once delivered
    ARGV[3...] job ids (outbox entry ids)

  Output:
    ack:    the number of entries kept
    sweep:  {jobId1, payload1, jobId2, payload2, ...} the entries kept
]]
local rcall = redis.call

local EXEC = string.rep("%x", 12)
local activityJobs, orchestratorJobs, statePrefix, pendingPrefix = KEYS[3], KEYS[4], KEYS[5], KEYS[6]

-- True when task `seq` of execution `exec` of instance `id` needs nothing more: the instance is
-- gone or in another execution, or the task is no longer pending (its result is in).
local function taskSettled(id, exec, seq)
  if rcall("HGET", statePrefix .. id, "exec") ~= exec then return true end
  return rcall("SISMEMBER", pendingPrefix .. id, seq) == 0
end

-- "<kind>-<instance id>-<execution>-<number>": instance ids may hold '-', executions are 12 hex digits.
local function parseId(jobId)
  return string.match(jobId, "^%a%-(.+)%-(" .. EXEC .. ")%-(%d+)$")
end

local crossing = ARGV[2] == "1"

local function isSafe(jobId, payload)
  local kind = string.sub(payload, 1, 1)
  if crossing and (kind == "S" or kind == "P" or kind == "R" or kind == "M") then return false end
  if kind == "A" or kind == "T" then
    local jobs = kind == "A" and activityJobs or orchestratorJobs
    if rcall("EXISTS", jobs .. jobId) == 1 then return true end
    local id, exec, seq = parseId(jobId)
    if not id then
      local d = cjson.decode(string.sub(payload, 2))
      id, exec, seq = d.i, d.x, tostring(d.s)
    end
    return taskSettled(id, exec, seq)
  elseif kind == "W" then
    if rcall("EXISTS", orchestratorJobs .. jobId) == 1 then return true end
    local id, exec, version = string.match(payload, "^W([^|]*)|([^|]*)|(%d+)")
    local st = rcall("HMGET", statePrefix .. id, "exec", "version", "scheduled")
    return st[1] ~= exec or tonumber(st[2]) > tonumber(version) or st[3] ~= "1"
  elseif kind == "X" then
    local d = cjson.decode(string.sub(payload, 2))
    return taskSettled(d.i, d.x, tostring(d.s))
  elseif kind == "S" then
    local d = cjson.decode(string.sub(payload, 2))
    if rcall("EXISTS", statePrefix .. d.i) == 1 then return true end
    return taskSettled(d.pi, d.px, tostring(d.ps))
  elseif kind == "R" then
    -- An entity's response to an orchestration (commitEntity): done once the task has its result.
    local d = cjson.decode(string.sub(payload, 2))
    return taskSettled(d.i, d.x, tostring(d.s))
  elseif kind == "P" then
    local plink = rcall("HGET", statePrefix .. string.sub(payload, 2), "plink")
    if not plink then return true end
    local pid, pexec, pseq = string.match(plink, "^([^|]*)|([^|]*)|(%d+)$")
    if not pid then return true end
    return taskSettled(pid, pexec, pseq)
  end
  return true
end

if ARGV[1] == "done" then
  for i = 3, #ARGV do
    rcall("HDEL", KEYS[1], ARGV[i])
    rcall("ZREM", KEYS[2], ARGV[i])
  end
  return 0
end

local sweep = ARGV[1] == "sweep"
local kept = {}
local nkept = 0
for i = 3, #ARGV do
  local jobId = ARGV[i]
  local keep = false
  -- The common case first, without reading the payload: an activity, timer or wake job that BullMQ holds.
  local prefix = string.sub(jobId, 1, 2)
  local held = false
  if prefix == "a-" then held = rcall("EXISTS", activityJobs .. jobId) == 1
  elseif prefix == "t-" or prefix == "w-" then held = rcall("EXISTS", orchestratorJobs .. jobId) == 1 end
  local payload = false
  if not held then payload = rcall("HGET", KEYS[1], jobId) end
  if held then
    -- safe: removed below
  elseif payload then
    if string.sub(payload, 1, 1) == "B" then
      -- A batch (a large fan-out): safe when each of its entries is; the sweep re-queues only the others.
      local inner = cjson.decode(string.sub(payload, 2))
      local open = {}
      for _, e in ipairs(inner) do
        if not isSafe(e[1], e[2]) then open[#open + 1] = e end
      end
      if #open > 0 then
        keep = true
        if sweep and #open ~= #inner then
          payload = "B" .. cjson.encode(open)
          rcall("HSET", KEYS[1], jobId, payload)
        end
      end
    else
      keep = not isSafe(jobId, payload)
    end
  end
  if keep then
    nkept = nkept + 1
    if sweep then
      kept[#kept + 1] = jobId
      kept[#kept + 1] = payload
    end
  else
    rcall("HDEL", KEYS[1], jobId)
    rcall("ZREM", KEYS[2], jobId)
  end
end
if sweep then return kept end
return nkept
