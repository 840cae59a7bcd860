-- renew_lease: extends a waiting user's lease if the calling stream still owns it, and
-- reports what the user is told at each keepalive.
--
-- KEYS[1..9] the pool's prefix and fixed keys (see lib.lua and sessions_app/lua/lib.lua);
-- KEYS[10] <prefix>lease:<user>, KEYS[11] <prefix>user_interests:<user>.
-- ARGV[1] user id, ARGV[2] stream token, ARGV[3] lease length (ms)
-- Returns {'WAITING', others waiting in the user's queues} when renewed;
--         {'GONE'}  the user holds no lease (matched, cancelled, or the lease lapsed);
--         {'TAKEN'} another stream holds the lease (this one was replaced).

local user = ARGV[1]
local lease = KEYS[10]
local owner = redis.call('GET', lease)
if owner ~= ARGV[2] then
  return {owner and 'TAKEN' or 'GONE'}
end
redis.call('PEXPIRE', lease, ARGV[3])
return queue_info(user, redis.call('SMEMBERS', KEYS[11]))
