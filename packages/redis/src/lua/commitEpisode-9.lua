--[[
  Commits one orchestrator episode atomically: checks the instance version (optimistic
  concurrency), appends the episode to history (moving the consumed inbox entries into it),
  records what the code now waits on, queues new work through the outbox, and decides whether the
  orchestrator must run again for events that arrived during the episode.

  Input:
    KEYS[1] instance state hash
    KEYS[2] history stream
    KEYS[3] inbox list
    KEYS[4] pending set
    KEYS[5] wait set
    KEYS[6] partition outbox hash
    KEYS[7] partition outbox index
    KEYS[8] partition status index
    KEYS[9] claim set (tokens of the instance's payloads stored apart)

    ARGV[1]  A: msgpack array of the 31 scalar arguments A[1]..A[31] below, as strings ("" in the
             places of A[7], A[8], A[10] and A[15], which are blobs and travel as ARGV[2..5])
    ARGV[2..5] A[7], A[8], A[10], A[15]
    ARGV[6...] P events, S events, O pairs, C inbox entries, M pairs (token, encoded payload),
            M2 pairs

    A[1]  expected version
    A[2]  execution id
    A[3]  instance id
    A[4]  now (ms)
    A[5]  inbox entries consumed by the episode: "<n>" or "<n>|<sha1>", the SHA-1 of those n
             entries as the worker read them (each as <u32 length><entry>): the commit applies only
             to the inbox the episode saw (deliveries lost by a Redis restart that cut its AOF, then
             made again, would otherwise be taken for what the code was given)
    A[6]  new status: Running | Completed | Failed | Terminated | ContinuedAsNew
    A[7]  output (msgpack, "" for none); for ContinuedAsNew the next execution's input
    A[8]  failure (msgpack, "" for none)
    A[9]  "1" when the custom status changed
    A[10] custom status (msgpack)
    A[11] wait mode: "a" all, "y" any, "u" unknown (wake on every event)
    A[12] "1" when the wait ids are exactly the open tasks
    A[13] wait ids, comma-separated
    A[14] newly scheduled sequence numbers, comma-separated
    A[15] events after the S events, already packed as records <u32 length><msgpack event> ("" for none)
    A[16] channel on which a finished instance's id is published
    A[17] ContinuedAsNew: the next execution's id
    A[18] ContinuedAsNew: C, number of entries that open the next execution's inbox
    A[19] ContinuedAsNew: "1" to carry over raised events that arrived during this episode
    A[20] P: number of history events before the consumed inbox entries
    A[21] S: number of history events after them
    A[22] O: number of outbox entries (pairs of job id, payload); a pair whose job id starts with
             "e-" is an entity message, appended to the entity's inbox here (enqueueEntityMessage)
    A[23] direct result "<seq>|<last history entry id>|<history entries>": the sequence number of a task result
             that is the last of the P events instead of an inbox entry ("" for none). The worker that
             ran the activity ran the episode too, from its own copy of the history, which ends at that
             entry; the commit applies only while nothing else reached the instance since (no episode
             queued, inbox empty, task still pending, the history's last entry is that one and the
             stream holds that many entries: after a Redis restart that lost the last second, a
             re-run episode has another id), else it writes nothing and returns {-6}.
             "|<last history entry id>|<history entries>": an episode run from the worker's copy of
             the history on the inbox its wake job carried; the commit applies only while the
             history is still that copy (last entry id and length; else {-6}; A[5] covers the inbox).
    A[24] outbox entry to remove with this commit ("" for none): the activity whose result this is
    A[25] outbox entry to write leased ("" for none): an activity the caller runs itself
    A[26] with A[25]: until when (ms) the sweep leaves it alone
    A[27] M: number of payloads of this execution stored apart (claim check)
    A[28] M2: ContinuedAsNew: number of payloads of the next execution stored apart
    A[29] Running: the id of the worker that keeps this episode's session (state field `sw`: the
          wake-ups of the next episode go to it, see deliverEvent), "" for none
    A[30] the BullMQ activity queue's key prefix ("<prefix>:activity:"): outbox pairs whose payload
          is "Q<n>:<name><job data JSON>" (<n>: the name's length in bytes) are activity jobs added
          to that queue by this commit (addQueueJob), not outbox entries
    A[31] with A[30]: the activity jobs' BullMQ options as JSON, without jobId

  Claim check: the M payloads are stored unless the execution continues as new (their events go
  with its history); then the execution's payloads are deleted, but those referenced by raised
  events carried over from the inbox tail, and the M2 payloads of the next execution are stored.

  History stream entries have one field: "b", a batch of records <u32 length><msgpack event>: one
  entry per episode (a fan-out of N is one entry, not N). Entries with "e" (one msgpack event) are
  read too: terminateInstance writes those.

  Events:
    PUBLISH A[16] instanceId when the instance reaches a final status

  Output:
    {1, version, wakeJobId, wakePayload, parentJobId, parentPayload, historyEntryId}   committed ("" where none)
    {-2}     stale: nothing was written
    {-6}     direct result refused (A[23]): nothing was written
    {-8}     the inbox is not what the episode consumed (A[5]): nothing was written
]]
local rcall = redis.call
-- The scalar arguments travel packed (one msgpack array of strings, blobs in ARGV[2..5]): an
-- argument costs the client more to send than this costs Redis to unpack.
local A = cmsgpack.unpack(ARGV[1])
A[7], A[8], A[10], A[15] = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
--- @include "includes/isTerminal"
--- @include "includes/isCounted"
--- @include "includes/parseInboxHeader"
--- @include "includes/addWake"
--- @include "includes/setStatus"
--- @include "includes/notifyParent"
--- @include "includes/addAll"
--- @include "includes/storeClaims"
--- @include "includes/deleteClaims"
--- @include "includes/enqueueEntityMessage"
--- @include "includes/addQueueJob"

local st, hist, inbox, pending, waitKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local cur = rcall("HMGET", st, "version", "exec", "status", "scheduled", "hlast", "createdAt", "episodes", "wmode", "wcov")
if cur[1] ~= A[1] or cur[2] ~= A[2] or isTerminal(cur[3]) or cur[3] == "Suspended" then return {-2} end
if A[23] ~= "" then
  local seq, last, entries = string.match(A[23], "^(%d*)|([^|]*)|(%d+)$")
  if not seq or cur[5] ~= last or rcall("XLEN", hist) ~= tonumber(entries) then return {-6} end
  if seq ~= "" and (cur[4] == "1" or rcall("LLEN", inbox) > 0 or rcall("SREM", pending, seq) == 0) then return {-6} end
end
local n, inboxSha = string.match(A[5], "^(%d+)|?(%x*)$")
n = tonumber(n)
local status = A[6]
local consumed = {}
-- A Running commit also looks at the events that arrived during the episode (after the consumed
-- ones): one read of the whole inbox serves both.
local whole
if status == "Running" then
  whole = rcall("LRANGE", inbox, 0, -1)
  for k = 1, math.min(n, #whole) do consumed[k] = whole[k] end
elseif n > 0 then
  consumed = rcall("LRANGE", inbox, 0, n - 1)
end
if n > 0 then
  if inboxSha ~= "" then
    local framed = {}
    for k, entry in ipairs(consumed) do framed[k] = struct.pack(">I4", #entry) .. entry end
    if #consumed ~= n or redis.sha1hex(table.concat(framed)) ~= inboxSha then return {-8} end
  end
end
if A[24] ~= "" then
  rcall("HDEL", KEYS[6], A[24])
  rcall("ZREM", KEYS[7], A[24])
end

local exec, instanceId, now = A[2], A[3], A[4]
local wmode, wcov = A[11], A[12]
local P, S, O = tonumber(A[20]), tonumber(A[21]), tonumber(A[22])
local C = tonumber(A[18])
local M, M2 = tonumber(A[27]), tonumber(A[28])
local i = 6

-- 1. History: the whole episode (P events, the n consumed inbox entries, S events, the batch) is
-- one stream entry, so an episode costs one XADD whatever its size.
local parts = {}
for _ = 1, P do
  parts[#parts + 1] = struct.pack(">I4", #ARGV[i]) .. ARGV[i]; i = i + 1
end
if n > 0 then
  for _, entry in ipairs(consumed) do
    local _, _, payload = parseInboxHeader(entry)
    parts[#parts + 1] = struct.pack(">I4", #payload) .. payload
  end
  rcall("LTRIM", inbox, n, -1)
end
for _ = 1, S do
  parts[#parts + 1] = struct.pack(">I4", #ARGV[i]) .. ARGV[i]; i = i + 1
end
if A[15] ~= "" then parts[#parts + 1] = A[15] end
local entryId = rcall("XADD", hist, "*", "b", table.concat(parts))

local version = tonumber(A[1]) + 1
-- The state fields this commit writes: one HSET per outcome, below.
local fields = {"version", version, "updatedAt", now, "hlast", entryId, "episodes", (tonumber(cur[7]) or 0) + 1}
local function field(name, value)
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end
if A[9] == "1" then field("custom", A[10]) end
-- Status and creation time as read above (setStatus would read them again).
local known = {cur[3], cur[6]}
local outboxStart = i
local outboxEnd = i + 2 * O - 1
local inboxStart = outboxEnd + 1
local claimsStart = inboxStart + C
if M > 0 and status ~= "ContinuedAsNew" then storeClaims(KEYS[9], claimsStart, M) end
-- Entity messages the episode sent ("e-..." pairs) go to their entities' inboxes with this commit,
-- in the order the code sent them, whatever the episode's status: exactly once, never through BullMQ.
for j = outboxStart, outboxEnd, 2 do
  if string.sub(ARGV[j], 1, 2) == "e-" then enqueueEntityEnvelope(ARGV[j + 1], tonumber(now)) end
end

local function writeOutbox()
  for j = outboxStart, outboxEnd, 2 do
    local jobId, payload = ARGV[j], ARGV[j + 1]
    if string.sub(payload, 1, 1) == "Q" then
      -- An activity job, added to BullMQ here (A[30]): no outbox entry, no add, no ack.
      local len, rest = string.match(payload, "^Q(%d+):(.*)$")
      len = tonumber(len)
      addQueueJob(A[30], jobId, string.sub(rest, 1, len), string.sub(rest, len + 1), A[31], now)
    elseif string.sub(jobId, 1, 2) ~= "e-" then
      addOutboxEntry(KEYS[6], KEYS[7], jobId, payload, jobId == A[25] and A[26] or now)
    end
  end
end

if isTerminal(status) then
  setStatus(st, KEYS[8], instanceId, status, known)
  if A[7] ~= "" then field("output", A[7]) end
  if A[8] ~= "" then field("failure", A[8]) end
  field("completedAt", now); field("scheduled", 0); field("wmode", "u"); field("need", 0)
  rcall("HSET", st, unpack(fields))
  rcall("HDEL", st, "sw")
  rcall("DEL", inbox, pending, waitKey)
  -- Work the code started and never awaited still runs (fire and forget); its results are dropped.
  writeOutbox()
  local parentJob = notifyParent(st, KEYS[6], KEYS[7], instanceId, exec, now)
  rcall("PUBLISH", A[16], instanceId)
  if parentJob then return {1, version, "", "", parentJob, "P" .. instanceId, entryId} end
  return {1, version, "", "", "", "", entryId}
end

if status == "ContinuedAsNew" then
  -- A new execution with a fresh history. Results of the old one are dropped (their execution id
  -- no longer matches); raised events that arrived during this episode are carried over on request.
  local newExec = A[17]
  local tail = rcall("LRANGE", inbox, 0, -1)
  rcall("DEL", hist, inbox, pending, waitKey)
  for j = inboxStart, inboxStart + C - 1 do rcall("RPUSH", inbox, ARGV[j]) end
  local carried = {}
  if A[19] == "1" then
    for _, entry in ipairs(tail) do
      if string.sub(entry, 1, 1) == "e" then
        rcall("RPUSH", inbox, entry)
        carried[#carried + 1] = entry
      end
    end
  end
  deleteClaims(KEYS[9], carried)
  storeClaims(KEYS[9], claimsStart + 2 * M, M2)
  field("exec", newExec); field("input", A[7]); field("scheduled", 1); field("wmode", "u"); field("need", 0)
  rcall("HSET", st, unpack(fields))
  rcall("HDEL", st, "output", "failure", "hlast", "sw")
  setStatus(st, KEYS[8], instanceId, "ContinuedAsNew", known)
  local jobId, payload = addWake(KEYS[6], KEYS[7], instanceId, newExec, version, now)
  return {1, version, jobId, payload, "", "", entryId}
end

-- 2. Running: what the code waits on now.
setStatus(st, KEYS[8], instanceId, "Running", known)
addAll(pending, A[14])
-- Only a commit writes the wait set, and only when the code waited on some open tasks ("a" or "y",
-- not all of them): none is left from the last commit otherwise (nor before the first).
if cur[8] and cur[8] ~= "u" and cur[9] ~= "1" then rcall("DEL", waitKey) end
local K = 0
for _ in string.gmatch(A[13], "[^,]+") do K = K + 1 end
if wmode ~= "u" and wcov ~= "1" and K > 0 then addAll(waitKey, A[13]) end
-- "all" needs every id; "any" (and an "all" over raised events only) needs one counted result.
local need = 1
if wmode == "a" and K > 0 then need = K end

-- 3. Events that arrived during the episode: would they let the code progress?
local progress = false
for k = n + 1, #whole do
  local entry = whole[k]
  local kind, seq = parseInboxHeader(entry)
  if kind == "n" then
    -- informational (suspend/resume markers): never a reason to run
  elseif kind == "e" or wmode == "u" then
    progress = true
  elseif isCounted(waitKey, wcov, seq) then
    if kind == "f" then progress = true else need = need - 1 end
  end
  if progress then break end
end
if need <= 0 then progress = true end
field("wmode", wmode); field("wcov", wcov); field("need", need)
if A[29] ~= "" then field("sw", A[29]) else rcall("HDEL", st, "sw") end

-- 4. New work.
writeOutbox()

if progress then
  local jobId, payload = addWake(KEYS[6], KEYS[7], instanceId, exec, version, now)
  rcall("HSET", st, unpack(fields))
  return {1, version, jobId, payload, "", "", entryId}
end
field("scheduled", 0)
rcall("HSET", st, unpack(fields))
return {1, version, "", "", "", "", entryId}
