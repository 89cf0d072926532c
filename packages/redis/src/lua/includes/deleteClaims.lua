-- Claim check: deletes the instance's payloads stored apart. With `keep` (a list of raw inbox
-- entries that move on to a next execution), those whose token appears in one of them stay: a
-- reference holds its token verbatim (msgpack extension "<token>:<bytes>", 16 random hex digits),
-- so a substring search finds exactly the payloads still referenced. Without `keep`, the claim set
-- goes too.
local function deleteClaims(setKey, keep)
  for _, token in ipairs(rcall("SMEMBERS", setKey)) do
    local kept = false
    if keep then
      for _, raw in ipairs(keep) do
        if string.find(raw, token, 1, true) then kept = true; break end
      end
    end
    if not kept then
      rcall("DEL", setKey .. ":" .. token)
      if keep then rcall("SREM", setKey, token) end
    end
  end
  if not keep then rcall("DEL", setKey) end
end
