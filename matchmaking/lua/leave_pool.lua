-- leave_pool: a user arriving in another match pool leaves this one: their place here
-- is given up and their session here ends, as an arrival does within its own pool.
--
-- Called by the arriving side before its matcher call, once per other pool (a user
-- waits and chats in one pool at a time); not atomic with that call, which runs on
-- another pool's slot.
-- KEYS[1..9] the pool's prefix and fixed keys (see lib.lua and sessions_app/lua/lib.lua);
-- KEYS[10] <prefix>lease:<user>, KEYS[11] <prefix>user_session:<user>.
-- ARGV[1] user id
-- Returns the token of the stream that held the user's place here ('' if none): the
-- caller tells it that it was replaced.

local owner = redis.call('GET', KEYS[10]) or ''
if owner ~= '' then
  redis.call('DEL', KEYS[10])
end
leave_queues(ARGV[1])
end_user_session(KEYS[11])
return owner
