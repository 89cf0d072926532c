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

    ARGV[1]  expected version
    ARGV[2]  execution id
    ARGV[3]  instance id
    ARGV[4]  now (ms)
    ARGV[5]  inbox entries consumed by the episode: "<n>" or "<n>|<sha1>", the SHA-1 of those n
             entries as the worker read them (each as <u32 length><entry>): the commit applies only
             to the inbox the episode saw (deliveries lost by a Redis restart that cut its AOF, then
             made again, would otherwise be taken for what the code was given)
    ARGV[6]  new status: Running | Completed | Failed | Terminated | ContinuedAsNew
    ARGV[7]  output (msgpack, "" for none); for ContinuedAsNew the next execution's input
    ARGV[8]  failure (msgpack, "" for none)
    ARGV[9]  "1" when the custom status changed
    ARGV[10] custom status (msgpack)
    ARGV[11] wait mode: "a" all, "y" any, "u" unknown (wake on every event)
    ARGV[12] "1" when the wait ids are exactly the open tasks
    ARGV[13] wait ids, comma-separated
    ARGV[14] newly scheduled sequence numbers, comma-separated
    ARGV[15] events after the S events, already packed as records <u32 length><msgpack event> ("" for none)
    ARGV[16] channel on which a finished instance's id is published
    ARGV[17] ContinuedAsNew: the next execution's id
    ARGV[18] ContinuedAsNew: C, number of entries that open the next execution's inbox
    ARGV[19] ContinuedAsNew: "1" to carry over raised events that arrived during this episode
    ARGV[20] P: number of history events before the consumed inbox entries
    ARGV[21] S: number of history events after them
    ARGV[22] O: number of outbox entries (pairs of job id, payload)
    ARGV[23] direct result "<seq>|<last history entry id>|<history entries>": the sequence number of a task result
             that is the last of the P events instead of an inbox entry ("" for none). The worker that
             ran the activity ran the episode too, from its own copy of the history, which ends at that
             entry; the commit applies only while nothing else reached the instance since (no episode
             queued, inbox empty, task still pending, the history's last entry is that one and the
             stream holds that many entries: after a Redis restart that lost the last second, a
             re-run episode has another id), else it writes nothing and returns {-6}.
             "|<last history entry id>|<history entries>": an episode run from the worker's copy of
             the history on the inbox its wake job carried; the commit applies only while the
             history is still that copy (last entry id and length; else {-6}; ARGV[5] covers the inbox).
    ARGV[24] outbox entry to remove with this commit ("" for none): the activity whose result this is
    ARGV[25] outbox entry to write leased ("" for none): an activity the caller runs itself
    ARGV[26] with ARGV[25]: until when (ms) the sweep leaves it alone
    ARGV[27] M: number of payloads of this execution stored apart (claim check)
    ARGV[28] M2: ContinuedAsNew: number of payloads of the next execution stored apart
    ARGV[29...] P events, S events, O pairs, C inbox entries, M pairs (token, encoded payload),
            M2 pairs

  Claim check: the M payloads are stored unless the execution continues as new (their events go
  with its history); then the execution's payloads are deleted, but those referenced by raised
  events carried over from the inbox tail, and the M2 payloads of the next execution are stored.

  History stream entries have one field: "b", a batch of records <u32 length><msgpack event>: one
  entry per episode (a fan-out of N is one entry, not N). Entries with "e" (one msgpack event) are
  read too: terminateInstance writes those.

  Events:
    PUBLISH ARGV[16] instanceId when the instance reaches a final status

  Output:
    {1, version, wakeJobId, wakePayload, parentJobId, parentPayload, historyEntryId}   committed ("" where none)
    {-2}     stale: nothing was written
    {-6}     direct result refused (ARGV[23]): nothing was written
    {-8}     the inbox is not what the episode consumed (ARGV[5]): nothing was written
]]
local rcall = redis.call
--- @include "includes/isTerminal"
--- @include "includes/isCounted"
--- @include "includes/parseInboxHeader"
--- @include "includes/addWake"
--- @include "includes/setStatus"
--- @include "includes/notifyParent"
--- @include "includes/addAll"
--- @include "includes/storeClaims"
--- @include "includes/deleteClaims"

local st, hist, inbox, pending, waitKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local cur = rcall("HMGET", st, "version", "exec", "status", "scheduled", "hlast")
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] or isTerminal(cur[3]) or cur[3] == "Suspended" then return {-2} end
if ARGV[23] ~= "" then
  local seq, last, entries = string.match(ARGV[23], "^(%d*)|([^|]*)|(%d+)$")
  if not seq or cur[5] ~= last or rcall("XLEN", hist) ~= tonumber(entries) then return {-6} end
  if seq ~= "" and (cur[4] == "1" or rcall("LLEN", inbox) > 0 or rcall("SREM", pending, seq) == 0) then return {-6} end
end
local n, inboxSha = string.match(ARGV[5], "^(%d+)|?(%x*)$")
n = tonumber(n)
local consumed = {}
if n > 0 then
  consumed = rcall("LRANGE", inbox, 0, n - 1)
  if inboxSha ~= "" then
    local framed = {}
    for k, entry in ipairs(consumed) do framed[k] = struct.pack(">I4", #entry) .. entry end
    if #consumed ~= n or redis.sha1hex(table.concat(framed)) ~= inboxSha then return {-8} end
  end
end
if ARGV[24] ~= "" then
  rcall("HDEL", KEYS[6], ARGV[24])
  rcall("ZREM", KEYS[7], ARGV[24])
end

local exec, instanceId, now = ARGV[2], ARGV[3], ARGV[4]
local status = ARGV[6]
local wmode, wcov = ARGV[11], ARGV[12]
local P, S, O = tonumber(ARGV[20]), tonumber(ARGV[21]), tonumber(ARGV[22])
local C = tonumber(ARGV[18])
local M, M2 = tonumber(ARGV[27]), tonumber(ARGV[28])
local i = 29

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
if ARGV[15] ~= "" then parts[#parts + 1] = ARGV[15] end
local entryId = rcall("XADD", hist, "*", "b", table.concat(parts))

local version = tonumber(ARGV[1]) + 1
rcall("HSET", st, "version", version, "updatedAt", now, "hlast", entryId)
rcall("HINCRBY", st, "episodes", 1)
if ARGV[9] == "1" then rcall("HSET", st, "custom", ARGV[10]) end
local outboxStart = i
local outboxEnd = i + 2 * O - 1
local inboxStart = outboxEnd + 1
local claimsStart = inboxStart + C
if M > 0 and status ~= "ContinuedAsNew" then storeClaims(KEYS[9], claimsStart, M) end

local function writeOutbox()
  for j = outboxStart, outboxEnd, 2 do
    addOutboxEntry(KEYS[6], KEYS[7], ARGV[j], ARGV[j + 1], ARGV[j] == ARGV[25] and ARGV[26] or now)
  end
end

if isTerminal(status) then
  setStatus(st, KEYS[8], instanceId, status)
  if ARGV[7] ~= "" then rcall("HSET", st, "output", ARGV[7]) end
  if ARGV[8] ~= "" then rcall("HSET", st, "failure", ARGV[8]) end
  rcall("HSET", st, "completedAt", now, "scheduled", 0, "wmode", "u", "need", 0)
  rcall("DEL", inbox, pending, waitKey)
  -- Work the code started and never awaited still runs (fire and forget); its results are dropped.
  writeOutbox()
  local parentJob = notifyParent(st, KEYS[6], KEYS[7], instanceId, exec, now)
  rcall("PUBLISH", ARGV[16], instanceId)
  if parentJob then return {1, version, "", "", parentJob, "P" .. instanceId, entryId} end
  return {1, version, "", "", "", "", entryId}
end

if status == "ContinuedAsNew" then
  -- A new execution with a fresh history. Results of the old one are dropped (their execution id
  -- no longer matches); raised events that arrived during this episode are carried over on request.
  local newExec = ARGV[17]
  local tail = rcall("LRANGE", inbox, 0, -1)
  rcall("DEL", hist, inbox, pending, waitKey)
  for j = inboxStart, inboxStart + C - 1 do rcall("RPUSH", inbox, ARGV[j]) end
  local carried = {}
  if ARGV[19] == "1" then
    for _, entry in ipairs(tail) do
      if string.sub(entry, 1, 1) == "e" then
        rcall("RPUSH", inbox, entry)
        carried[#carried + 1] = entry
      end
    end
  end
  deleteClaims(KEYS[9], carried)
  storeClaims(KEYS[9], claimsStart + 2 * M, M2)
  rcall("HSET", st, "exec", newExec, "input", ARGV[7], "scheduled", 1, "wmode", "u", "need", 0)
  rcall("HDEL", st, "output", "failure", "hlast")
  setStatus(st, KEYS[8], instanceId, "ContinuedAsNew")
  local jobId, payload = addWake(KEYS[6], KEYS[7], instanceId, newExec, version, now)
  return {1, version, jobId, payload, "", "", entryId}
end

-- 2. Running: what the code waits on now.
setStatus(st, KEYS[8], instanceId, "Running")
addAll(pending, ARGV[14])
rcall("DEL", waitKey)
local K = 0
for _ in string.gmatch(ARGV[13], "[^,]+") do K = K + 1 end
if wmode ~= "u" and wcov ~= "1" and K > 0 then addAll(waitKey, ARGV[13]) end
-- "all" needs every id; "any" (and an "all" over raised events only) needs one counted result.
local need = 1
if wmode == "a" and K > 0 then need = K end

-- 3. Events that arrived during the episode: would they let the code progress?
local progress = false
local tail = rcall("LRANGE", inbox, 0, -1)
for _, entry in ipairs(tail) do
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
rcall("HSET", st, "wmode", wmode, "wcov", wcov, "need", need)

-- 4. New work.
writeOutbox()

if progress then
  local jobId, payload = addWake(KEYS[6], KEYS[7], instanceId, exec, version, now)
  return {1, version, jobId, payload, "", "", entryId}
end
rcall("HSET", st, "scheduled", 0)
return {1, version, "", "", "", "", entryId}
