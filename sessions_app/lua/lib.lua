-- Session library of sessions_app, prepended to its scripts (see sessions_app/store.py)
-- and, before matchmaking's own library, to every matchmaking script (matchmaking/store.py).
-- Keys touched (derived from ids, so scripts take no KEYS; one Redis primary, not
-- Redis Cluster):
--   chat_session:<id>     STRING JSON {chatId, serverUrl, participants, interest, createdAt}
--   user_session:<u>      STRING chat id of u's current session
--   sessions:active       ZSET  chat ids, score = creation time (ms)
-- The matcher creates sessions (create_match in matchmaking/lua/lib.lua).

-- Ends a chat session for both participants; returns its JSON, or false if unknown.
local function end_session(chat_id)
  redis.call('ZREM', 'sessions:active', chat_id)
  local raw = redis.call('GET', 'chat_session:' .. chat_id)
  if not raw then
    return false
  end
  redis.call('DEL', 'chat_session:' .. chat_id)
  for _, participant in ipairs(cjson.decode(raw).participants) do
    local key = 'user_session:' .. participant
    if redis.call('GET', key) == chat_id then
      redis.call('DEL', key)
    end
  end
  return raw
end

-- Ends the user's current session, if any; returns its JSON, or false.
local function end_user_session(user)
  local key = 'user_session:' .. user
  local chat_id = redis.call('GET', key)
  if not chat_id then
    return false
  end
  redis.call('DEL', key)
  return end_session(chat_id)
end
