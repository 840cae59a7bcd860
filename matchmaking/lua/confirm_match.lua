-- confirm_match: the caller of the matcher call that made a match has its reply; from
-- now on the match stands and the partner may be told (see create_match in lib.lua).
--
-- KEYS[1..9] the pool's prefix and fixed keys (see lib.lua and sessions_app/lua/lib.lua);
-- KEYS[10] <prefix>attempt:<chat id>, KEYS[11] <prefix>undone:<chat id>.
-- ARGV[1] chat id
-- Returns 2 when the match is confirmed by this call, 1 when it was before (the caller
-- counts it for /metrics only on 2), 0 if it was undone: the partner, tired of waiting
-- for the confirmation, gave their place back (undo_match.lua).

local attempt = KEYS[10]
if redis.call('EXISTS', KEYS[11]) == 1 then
  return 0
end
local raw = redis.call('GET', attempt)
if raw and raw ~= 'W' then
  redis.call('DEL', attempt)
  return 2
end
return 1
