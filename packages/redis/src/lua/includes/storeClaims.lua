-- Claim check: stores `count` payloads apart, given from ARGV[from] on as pairs (token, encoded
-- payload), each under "<claim set key>:<token>" (HubKeys.claim: the same hash tag), and adds
-- their tokens to the instance's claim set. A script calls it only once it knows it commits, so a
-- refused transition leaves no payload behind.
local function storeClaims(setKey, from, count)
  for j = from, from + 2 * count - 1, 2 do
    rcall("SET", setKey .. ":" .. ARGV[j], ARGV[j + 1])
    rcall("SADD", setKey, ARGV[j])
  end
end
