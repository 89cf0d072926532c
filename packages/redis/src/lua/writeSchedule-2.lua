--[[
  Creates, changes, pauses, resumes or deletes a schedule's record. The BullMQ job scheduler that
  fires its ticks is written after this by the caller (and put right by the workers' sweep, or at
  the next tick, when the caller died in between): this record is what counts.

  Input:
    KEYS[1] the schedule's hash
    KEYS[2] partition schedules (lex zset of schedule ids)

    ARGV[1] operation: create | update | pause | resume | delete
    ARGV[2] schedule id
    ARGV[3] now (ms)
    ARGV[4...] create, update: the spec as field/value pairs (name, input, cron, tz, every, startAt,
            endAt, overlap, catchup, and for create paused); update removes the spec fields not given

  Output:
    {1, revision, paused}   done (revision: bumped by create and update; paused "1" or "0")
    {-1}                    create: a schedule with that id exists
    {-2}                    no such schedule
]]
local rcall = redis.call
local SPEC = {"name", "input", "cron", "tz", "every", "startAt", "endAt", "overlap", "catchup"}
local key, op, id, now = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local exists = rcall("EXISTS", key) == 1

if op == "create" then
  if exists then return {-1} end
  for i = 4, #ARGV, 2 do rcall("HSET", key, ARGV[i], ARGV[i + 1]) end
  rcall("HSET", key, "rev", 1, "createdAt", now, "updatedAt", now, "started", 0, "skipped", 0)
  rcall("ZADD", KEYS[2], 0, id)
  return {1, 1, rcall("HGET", key, "paused") == "1" and "1" or "0"}
end
if not exists then return {-2} end
if op == "delete" then
  rcall("DEL", key)
  rcall("ZREM", KEYS[2], id)
  return {1, 0, "0"}
end
if op == "update" then
  local given = {}
  for i = 4, #ARGV, 2 do given[ARGV[i]] = true end
  for _, f in ipairs(SPEC) do
    if not given[f] then rcall("HDEL", key, f) end
  end
  for i = 4, #ARGV, 2 do rcall("HSET", key, ARGV[i], ARGV[i + 1]) end
  rcall("HINCRBY", key, "rev", 1)
elseif op == "pause" then
  rcall("HSET", key, "paused", 1)
elseif op == "resume" then
  rcall("HDEL", key, "paused")
end
rcall("HSET", key, "updatedAt", now)
local cur = rcall("HMGET", key, "rev", "paused")
return {1, tonumber(cur[1]), cur[2] == "1" and "1" or "0"}
