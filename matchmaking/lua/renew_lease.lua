-- renew_lease: extends a waiting user's lease if the calling stream still owns it.
--
-- KEYS: none (see lib.lua).
-- ARGV[1] user id, ARGV[2] stream token, ARGV[3] lease length (ms)
-- Returns  1 renewed;
--          0 the user holds no lease (matched, cancelled, or the lease lapsed);
--         -1 another stream holds the lease (this one was replaced).

local lease = 'lease:' .. ARGV[1]
local owner = redis.call('GET', lease)
if owner == ARGV[2] then
  redis.call('PEXPIRE', lease, ARGV[3])
  return 1
end
if owner then
  return -1
end
return 0
