-- leave_queues: removes a user from every queue and drops their lease.
--
-- KEYS[1..9] the pool's prefix and fixed keys (see lib.lua and sessions_app/lua/lib.lua);
-- KEYS[10] <prefix>lease:<user>.
-- ARGV[1] user id
-- ARGV[2] stream token, or '' to remove whichever stream holds the place (cancel).
--         With a token, nothing happens unless that stream still owns the lease, so a
--         replaced stream closing late never removes its successor's place.
-- Returns {1 if the user was waiting and has been removed else 0, the token of the
-- stream that held the place ('' if none)}: a cancel tells that stream (its token is
-- the Channels channel it listens on).

local user, token = ARGV[1], ARGV[2]
local lease = KEYS[10]
local owner = redis.call('GET', lease) or ''
if token ~= '' and owner ~= token then
  return {0, ''}
end
redis.call('DEL', lease)
return {leave_queues(user), owner}
