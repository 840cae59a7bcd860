-- enqueue_or_match: the whole matchmaking decision for one arriving user, atomically.
--
-- KEYS: none (see lib.lua). Also reads service:maintenance, chat_servers:discovered
-- (LIST) and chat_servers:rr (counter); writes popular:<I> (ZSET user -> ms) and
-- popular:index (ZSET interest -> last ms).
-- ARGV[1]  user id
-- ARGV[2]  stream token that will own the user's lease while they wait
-- ARGV[3]  lease length (ms)
-- ARGV[4]  chat id to use if a match is made (unique, made by the caller)
-- ARGV[5]  popularity window (ms)
-- ARGV[6]  session time-to-live (s)
-- ARGV[7]  '1' if the service is in maintenance while service:maintenance is unset
-- ARGV[8]  N, the number of fallback chat servers; ARGV[9 .. 8+N] the servers
-- ARGV[9+N ..] the user's normalized interests (at least one)
-- Returns one of:
--   {'MAINTENANCE'}
--   {'NO_CHAT_SERVER'}                      nothing was changed
--   {'WAITING'}
--   {'MATCHED', partner, shared interests 'A,B', chat id, chat server url,
--    partner's wait (ms), token of the partner's stream}

local maintenance = redis.call('GET', 'service:maintenance')
if maintenance == '1' or (not maintenance and ARGV[7] == '1') then
  return {'MAINTENANCE'}
end

local user, token, lease_ms = ARGV[1], ARGV[2], ARGV[3]
local chat_id, window_ms, session_ttl = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local n_fallback = tonumber(ARGV[8])

-- Discovered chat servers win; the configured fallback is used while none are known.
local servers = redis.call('LRANGE', 'chat_servers:discovered', 0, -1)
if #servers == 0 then
  servers = {}
  for i = 1, n_fallback do
    servers[i] = ARGV[8 + i]
  end
end
if #servers == 0 then
  return {'NO_CHAT_SERVER'}
end

local interests = {}
for i = 9 + n_fallback, #ARGV do
  interests[#interests + 1] = ARGV[i]
end

local now = now_us()
local now_ms = math.floor(now / 1000)

end_user_session(user)
leave_queues(user)

for _, interest in ipairs(interests) do
  local key = 'popular:' .. interest
  redis.call('ZADD', key, now_ms, user)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms - window_ms)
  redis.call('PEXPIRE', key, window_ms)
  redis.call('ZADD', 'popular:index', now_ms, interest)
end
redis.call('ZREMRANGEBYSCORE', 'popular:index', '-inf', now_ms - window_ms)

-- The longest-waiting live user across all of the caller's queues. Each queue is
-- ordered by enqueue time and a user has the same time in all their queues, so the
-- oldest of the queue heads is the oldest compatible user overall. Heads whose lease
-- lapsed (their stream died with its server) are dropped from every queue on the way.
local partner, partner_since = nil, nil
for _, interest in ipairs(interests) do
  local queue = 'interest:' .. interest
  while true do
    local head = redis.call('ZRANGE', queue, 0, 0, 'WITHSCORES')
    if #head == 0 then
      break
    end
    local candidate, since = head[1], tonumber(head[2])
    if candidate ~= user and redis.call('EXISTS', 'lease:' .. candidate) == 1 then
      if partner == nil or since < partner_since
          or (since == partner_since and candidate < partner) then
        partner, partner_since = candidate, since
      end
      break
    end
    leave_queues(candidate)
    redis.call('ZREM', queue, candidate)
  end
end

if partner == nil then
  for _, interest in ipairs(interests) do
    redis.call('ZADD', 'interest:' .. interest, now, user)
    redis.call('SADD', 'queue:interests', interest)
  end
  redis.call('SADD', 'user_interests:' .. user, unpack(interests))
  redis.call('ZADD', 'queue:waiting', now, user)
  redis.call('SET', 'lease:' .. user, token, 'PX', lease_ms)
  return {'WAITING'}
end

local partner_interests = 'user_interests:' .. partner
local shared = {}
for _, interest in ipairs(interests) do
  if redis.call('SISMEMBER', partner_interests, interest) == 1 then
    shared[#shared + 1] = interest
  end
end
local partner_token = redis.call('GET', 'lease:' .. partner)
leave_queues(partner)
redis.call('DEL', 'lease:' .. partner, 'lease:' .. user)

local turn = redis.call('INCR', 'chat_servers:rr')
local server = servers[(turn - 1) % #servers + 1]
local shared_csv = table.concat(shared, ',')
local session = cjson.encode({
  chatId = chat_id,
  serverUrl = server,
  participants = {partner, user},
  interest = shared_csv,
  createdAt = now_ms,
})
redis.call('SET', 'chat_session:' .. chat_id, session, 'EX', session_ttl)
redis.call('SET', 'user_session:' .. partner, chat_id, 'EX', session_ttl)
redis.call('SET', 'user_session:' .. user, chat_id, 'EX', session_ttl)
redis.call('ZADD', 'sessions:active', now_ms, chat_id)
redis.call('ZREMRANGEBYSCORE', 'sessions:active', '-inf', now_ms - tonumber(session_ttl) * 1000)

return {'MATCHED', partner, shared_csv, chat_id, server,
        math.floor((now - partner_since) / 1000), partner_token}
