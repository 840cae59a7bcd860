-- confirm_match: the caller of the matcher call that made a match has its reply; from
-- now on the match stands and the partner may be told (see create_match in lib.lua).
--
-- KEYS: none (see lib.lua).
-- ARGV[1] chat id
-- Returns 2 when the match is confirmed by this call, 1 when it was before (the caller
-- counts it for /metrics only on 2), 0 if it was undone: the partner, tired of waiting
-- for the confirmation, gave their place back (undo_match.lua).

local chat_id = ARGV[1]
if undone(chat_id) then
  return 0
end
local raw = redis.call('GET', 'attempt:' .. chat_id)
if raw and raw ~= 'W' then
  redis.call('DEL', 'attempt:' .. chat_id)
  return 2
end
return 1
