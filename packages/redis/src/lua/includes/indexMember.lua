-- Index members are "<prefix>|<createdAt, 13 digits>|<instance id>" in lexicographic zsets, so one
-- ZRANGEBYLEX pages through an index in creation order, optionally within a time range.
local function indexMember(prefix, createdAt, instanceId)
  local t = tostring(createdAt)
  t = string.rep("0", 13 - #t) .. t
  if prefix == "" then return t .. "|" .. instanceId end
  return prefix .. "|" .. t .. "|" .. instanceId
end
