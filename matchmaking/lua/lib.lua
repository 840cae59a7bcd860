-- Matching library, prepended to every matchmaking script after sessions_app's library
-- (sessions_app/lua/lib.lua: KEYS[1] the pool's key prefix, KEYS[2] its sessions:active,
-- the session keys and end_session), see matchmaking/store.py.
--
-- A script works on one match pool (animochat/pools.py), and every key it touches
-- starts with the pool's prefix, so all are in the pool's Redis Cluster hash slot. The
-- pool's fixed keys follow the session library's in KEYS, in this order, for every
-- script using this library; each script's own keys come after them, from KEYS[10]:
--   KEYS[3]  queue:waiting         ZSET every waiting user, score = enqueue time (µs)
--   KEYS[4]  queue:interests       SET  interests whose queue is not empty
--   KEYS[5]  queue:sizes           ZSET the same interests, score = their queue's size
--                                       (largest queues for /status in O(log n))
--   KEYS[6]  queue:fallback        ZSET waiting users past their fallback time, score =
--                                       enqueue time (µs)
--   KEYS[7]  chat_servers:discovered LIST chat servers from discovery (a copy per pool)
--   KEYS[8]  chat_servers:rr       STRING the pool's round-robin turn counter
--   KEYS[9]  service:maintenance   STRING '1' or '0' (a copy per pool)
-- Keys of users, interests and calls a script meets only while it runs (a queue's head,
-- a partner, an interest the user waits in) are named from the prefix (see
-- sessions_app/lua/lib.lua for why):
--   <prefix>interest:<I>          ZSET  waiting users of interest I, score = enqueue time (µs)
--   <prefix>user_interests:<u>    SET   interests of waiting user u
--   <prefix>lease:<u>             STRING token of the stream holding u's place, expires (PX)
--   <prefix>recent:<u>            ZSET  users u was just matched with, score = end of
--                                       cooldown (ms)
--   <prefix>attempt:<id>          STRING what the matcher call that was given chat id <id>
--                                 did, until its caller has the reply: 'W' (the user was
--                                 queued), or a pending match's JSON (see create_match)
--                                 until confirmed
--   <prefix>undone:<id>           STRING the call given chat id <id> was undone
--                                 (undo_match.lua): should it run after all, it does nothing
-- The caller passes the ones it knows (the user's own, the call's chat id, the user's
-- interests) in KEYS too; each script's header lists them.
-- Written by bookkeeping.lua, in the pool too:
--   <prefix>metrics:matches       HASH  '<shared interests>:<fallback 0|1>' -> confirmed matches
--   <prefix>metrics:time_to_match HASH  'le:<seconds>' waits in (previous bound, bound], 'sum_ms'

local WAITING, QUEUED_INTERESTS, QUEUE_SIZES, FALLBACK = KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local DISCOVERED, TURN, MAINTENANCE = KEYS[7], KEYS[8], KEYS[9]

local function interest_key(interest)
  return POOL .. 'interest:' .. interest
end

local function user_interests_key(user)
  return POOL .. 'user_interests:' .. user
end

local function lease_key(user)
  return POOL .. 'lease:' .. user
end

local function recent_key(user)
  return POOL .. 'recent:' .. user
end

local function attempt_key(chat_id)
  return POOL .. 'attempt:' .. chat_id
end

local function undone_key(chat_id)
  return POOL .. 'undone:' .. chat_id
end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- True for about one call in 16 (by the clock's microseconds): pruning of time windows
-- is bookkeeping that need not cost every call its Redis commands.
local function occasionally(now)
  return now % 16 == 0
end

-- Records the size of an interest's queue after it changed (queue:interests, queue:sizes).
local function note_queue_size(interest)
  local size = redis.call('ZCARD', interest_key(interest))
  if size == 0 then
    redis.call('SREM', QUEUED_INTERESTS, interest)
    redis.call('ZREM', QUEUE_SIZES, interest)
  else
    redis.call('SADD', QUEUED_INTERESTS, interest)
    redis.call('ZADD', QUEUE_SIZES, size, interest)
  end
end

-- Removes a user from every queue they wait in; returns 1 if they were waiting.
local function leave_queues(user)
  local interests_key = user_interests_key(user)
  local interests = redis.call('SMEMBERS', interests_key)
  if #interests == 0 then  -- not waiting (the usual case on arrival): one command
    return redis.call('ZREM', WAITING, user)
  end
  for _, interest in ipairs(interests) do
    local queue = interest_key(interest)
    redis.call('ZREM', queue, user)
    note_queue_size(interest)
  end
  redis.call('DEL', interests_key)
  redis.call('ZREM', FALLBACK, user)
  return redis.call('ZREM', WAITING, user)
end

-- Whether user and candidate were matched too recently to be matched again.
local function in_cooldown(user, candidate, now_ms, cooldown_ms)
  if cooldown_ms <= 0 then
    return false
  end
  local until_ms = redis.call('ZSCORE', recent_key(user), candidate)
  return until_ms and tonumber(until_ms) > now_ms
end

-- The longest-waiting user of a queue (ordered by enqueue time) who is live and may be
-- matched with user; drops users whose lease lapsed (their stream died with its server)
-- from every queue on the way. Returns member and score, or nil.
local function oldest_eligible(queue, user, now_ms, cooldown_ms)
  local position = 0
  while true do
    local entry = redis.call('ZRANGE', queue, position, position, 'WITHSCORES')
    if #entry == 0 then
      return nil
    end
    local candidate = entry[1]
    if candidate == user or in_cooldown(user, candidate, now_ms, cooldown_ms) then
      position = position + 1
    elseif redis.call('EXISTS', lease_key(candidate)) == 1 then
      return candidate, tonumber(entry[2])
    else
      leave_queues(candidate)
      redis.call('ZREM', queue, candidate)
    end
  end
end

-- The discovered chat servers, else the caller's fallback list (CHAT_SERVER_URLS); in
-- Python, discovery.services.chat_servers_in_use says the same for /status and the heartbeat.
local function chat_servers(fallback)
  local servers = redis.call('LRANGE', DISCOVERED, 0, -1)
  if #servers == 0 then
    return fallback
  end
  return servers
end

-- Pairs user with the waiting partner: both leave every queue, the session is stored
-- for both, and they are kept apart for cooldown_ms. The match stays pending until the
-- caller, holding the reply, confirms it (confirm_match.lua); until then the partner
-- is not told, and undo_match.lua can give the partner back their place, which is why
-- attempt:<chat id> keeps what that needs. Returns the matcher's reply:
-- {'MATCHED', partner, shared 'A,B', chat id, server, partner's wait (ms), partner's
-- stream token, '1' if a fallback match else '0'}.
local function create_match(user, partner, partner_since, shared, fallback, chat_id, servers,
                            now, session_ttl, cooldown_ms)
  local now_ms = math.floor(now / 1000)
  local partner_token = redis.call('GET', lease_key(partner)) or ''
  local waited_ms = math.floor((now - partner_since) / 1000)
  redis.call('SET', attempt_key(chat_id), cjson.encode({
    user = user,
    partner = partner,
    token = partner_token,
    since = string.format('%.0f', partner_since),
    interests = redis.call('SMEMBERS', user_interests_key(partner)),
    fallback = redis.call('ZSCORE', FALLBACK, partner) or '',
  }), 'EX', session_ttl)
  leave_queues(partner)
  leave_queues(user)
  redis.call('DEL', lease_key(partner), lease_key(user))

  local turn = redis.call('INCR', TURN)
  local server = servers[(turn - 1) % #servers + 1]
  local shared_csv = table.concat(shared, ',')
  local session = cjson.encode({
    chatId = chat_id,
    serverUrl = server,
    participants = {partner, user},
    interest = shared_csv,
    fallback = fallback,
    createdAt = now_ms,
  })
  redis.call('SET', session_key(chat_id), session, 'EX', session_ttl)
  redis.call('SET', user_session_key(partner), chat_id, 'EX', session_ttl)
  redis.call('SET', user_session_key(user), chat_id, 'EX', session_ttl)
  redis.call('ZADD', ACTIVE_SESSIONS, now_ms, chat_id)
  if occasionally(now) then
    redis.call('ZREMRANGEBYSCORE', ACTIVE_SESSIONS, '-inf',
               now_ms - tonumber(session_ttl) * 1000)
  end

  if cooldown_ms > 0 then
    for _, pair in ipairs({{user, partner}, {partner, user}}) do
      local key = recent_key(pair[1])
      if occasionally(now) then
        redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms)
      end
      redis.call('ZADD', key, now_ms + cooldown_ms, pair[2])
      redis.call('PEXPIRE', key, cooldown_ms)
    end
  end

  return {'MATCHED', partner, shared_csv, chat_id, server, waited_ms, partner_token,
          fallback and '1' or '0'}
end

-- What a waiting user is told: others waiting in their queues (counted exactly up to
-- 100 per queue, the rest by size). The estimated wait is the caller's (from popularity).
local function queue_info(user, interests)
  local others, waiting = {}, 0
  for _, interest in ipairs(interests) do
    local queue = interest_key(interest)
    local size = redis.call('ZCARD', queue)
    -- A queue of one holds only the user (the usual case: others would have matched).
    if size > 1 and size <= 100 then
      for _, member in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
        if member ~= user and not others[member] then
          others[member] = true
          waiting = waiting + 1
        end
      end
    elseif size > 100 then
      waiting = waiting + size - 1
    end
  end
  return {'WAITING', waiting}
end

-- Gives a pending match's partner their place back, as it was: the same enqueue time
-- in the same queues, and a lease for the same stream, which renews it as before.
-- Not if the partner has moved on (a newer stream of theirs holds a place).
local function restore_partner(pending, lease_ms)
  local partner = pending.partner
  if pending.token == '' or redis.call('EXISTS', lease_key(partner)) == 1 then
    return
  end
  for _, interest in ipairs(pending.interests) do
    redis.call('ZADD', interest_key(interest), pending.since, partner)
    note_queue_size(interest)
  end
  if #pending.interests > 0 then
    redis.call('SADD', user_interests_key(partner), unpack(pending.interests))
  end
  redis.call('ZADD', WAITING, pending.since, partner)
  if pending.fallback ~= '' then
    redis.call('ZADD', FALLBACK, pending.fallback, partner)
  end
  redis.call('SET', lease_key(partner), pending.token, 'PX', lease_ms)
end
