-- Inbox entries are "<kind><seq>|<msgpack event>": kind "c" (task completed), "f" (task failed),
-- "e" (anything else: always lets the code react). Returns kind, seq (string), payload.
local function parseInboxHeader(entry)
  local sep = string.find(entry, "|", 1, true)
  local kind = string.sub(entry, 1, 1)
  local seq = string.sub(entry, 2, sep - 1)
  return kind, seq, string.sub(entry, sep + 1)
end
