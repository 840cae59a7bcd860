-- Session library of sessions_app, prepended to its scripts (see sessions_app/store.py)
-- and, before matchmaking's own library, to every matchmaking script (matchmaking/store.py).
--
-- Sessions live in their match pool (animochat/pools.py): the matcher writes them in the
-- same atomic call that takes the partner's place, so their keys carry the pool's prefix
-- and share its Redis Cluster hash slot. Every script using this library starts KEYS
-- with:
--   KEYS[1]  the pool's key prefix, '{p:<pool>}' ('' for the pool named default on a
--            single Redis, whose keys keep their names from before pools). It names no
--            key of its own; Cluster routes the call by its slot, and the names of keys
--            a script learns only while it runs (a session's participants, a queue
--            head) are built from it: those hash to the same slot, which is all Cluster
--            asks of a script's keys, and no caller could pass them beforehand.
--   KEYS[2]  <prefix>sessions:active  ZSET chat ids, score = creation time (ms)
-- Keys whose names are built from the prefix:
--   <prefix>chat_session:<id>  STRING JSON {chatId, serverUrl, participants, interest, createdAt}
--   <prefix>user_session:<u>   STRING chat id of u's current session
-- The matcher creates sessions (create_match in matchmaking/lua/lib.lua).

local POOL = KEYS[1]
local ACTIVE_SESSIONS = KEYS[2]

local function session_key(chat_id)
  return POOL .. 'chat_session:' .. chat_id
end

local function user_session_key(user)
  return POOL .. 'user_session:' .. user
end

-- Ends a chat session for both participants; returns its JSON, or false if unknown.
local function end_session(chat_id)
  redis.call('ZREM', ACTIVE_SESSIONS, chat_id)
  local raw = redis.call('GET', session_key(chat_id))
  if not raw then
    return false
  end
  redis.call('DEL', session_key(chat_id))
  for _, participant in ipairs(cjson.decode(raw).participants) do
    local key = user_session_key(participant)
    if redis.call('GET', key) == chat_id then
      redis.call('DEL', key)
    end
  end
  return raw
end

-- Ends the user's current session, if any; returns its JSON, or false. user_session is
-- the user's <prefix>user_session:<u>, which the calling script was given in KEYS.
local function end_user_session(user_session)
  local chat_id = redis.call('GET', user_session)
  if not chat_id then
    return false
  end
  redis.call('DEL', user_session)
  return end_session(chat_id)
end
