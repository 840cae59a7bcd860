-- Shared library prepended to every AnimoChat Lua script (see animochat/redis_client.py).
-- Keys touched (all derived from ids, so scripts take no KEYS; this needs one Redis
-- primary, not Redis Cluster):
--   interest:<I>          ZSET  waiting users of interest I, score = enqueue time (µs)
--   user_interests:<u>    SET   interests of waiting user u
--   queue:waiting         ZSET  every waiting user, score = enqueue time (µs)
--   queue:interests       SET   interests whose queue is not empty
--   lease:<u>             STRING token of the stream holding u's place, expires (PX)
--   chat_session:<id>     STRING JSON {chatId, serverUrl, participants, interest, createdAt}
--   user_session:<u>      STRING chat id of u's current session
--   sessions:active       ZSET  chat ids, score = creation time (ms)

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Removes a user from every queue they wait in; returns 1 if they were waiting.
local function leave_queues(user)
  local interests_key = 'user_interests:' .. user
  for _, interest in ipairs(redis.call('SMEMBERS', interests_key)) do
    local queue = 'interest:' .. interest
    redis.call('ZREM', queue, user)
    if redis.call('ZCARD', queue) == 0 then
      redis.call('SREM', 'queue:interests', interest)
    end
  end
  redis.call('DEL', interests_key)
  return redis.call('ZREM', 'queue:waiting', user)
end

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
