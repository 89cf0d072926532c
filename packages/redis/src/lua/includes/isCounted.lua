-- Whether a task result counts toward what the blocked code waits on.
-- wcov == "1": the code waits on every open task, so every result counts;
-- otherwise only sequence numbers in the wait set count.
local function isCounted(waitKey, wcov, seq)
  if wcov == "1" then return true end
  return rcall("SISMEMBER", waitKey, seq) == 1
end
