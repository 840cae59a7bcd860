-- enter_fallback: a waiting user's fallback time has come; match them with the
-- longest-waiting other user already past their own fallback, or make them matchable
-- by the next such user. They keep their places in their interest queues.
--
-- KEYS[1..9] the pool's prefix and fixed keys (see lib.lua and sessions_app/lua/lib.lua);
-- KEYS[10] <prefix>attempt:<chat id>, KEYS[11] <prefix>undone:<chat id>,
-- KEYS[12] <prefix>lease:<user>, KEYS[13] <prefix>user_interests:<user>,
-- KEYS[14] <prefix>user_session:<user>, KEYS[15] <prefix>recent:<user>.
-- ARGV[1] user id, ARGV[2] stream token, ARGV[3] chat id to use if a match is made,
-- ARGV[4] session time-to-live (s), ARGV[5] rematch cooldown (ms),
-- ARGV[6] N, the number of fallback chat servers; ARGV[7 .. 6+N] the servers
-- Returns {'GONE'} if the stream no longer holds the user's place, {'WAITING'}, or the
-- reply of create_match (lib.lua) with the fallback flag set; {'UNDONE'} if the caller
-- gave up on this call and undid it (undo_match.lua) before it ran.

local user, token, chat_id = ARGV[1], ARGV[2], ARGV[3]
local session_ttl, cooldown_ms = ARGV[4], tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[11]) == 1 then
  return {'UNDONE'}
end
if redis.call('GET', KEYS[12]) ~= token then
  return {'GONE'}
end
local since = redis.call('ZSCORE', WAITING, user)
if not since then
  return {'GONE'}
end

local fallback_servers = {}
for i = 1, tonumber(ARGV[6]) do
  fallback_servers[i] = ARGV[6 + i]
end
local servers = chat_servers(fallback_servers)
local now = now_us()
if #servers > 0 then
  local anyone, anyone_since = oldest_eligible(FALLBACK, user, math.floor(now / 1000),
                                               cooldown_ms)
  if anyone then
    return create_match(user, anyone, anyone_since, {}, true, chat_id, servers, now,
                        session_ttl, cooldown_ms)
  end
end
redis.call('ZADD', FALLBACK, since, user)
return {'WAITING'}
