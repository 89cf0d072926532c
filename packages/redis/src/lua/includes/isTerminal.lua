-- True when a runtime status is final.
local function isTerminal(status)
  return status == "Completed" or status == "Failed" or status == "Terminated"
end
