-- enqueue_or_match: the whole matchmaking decision for one arriving user, atomically.
--
-- KEYS[1..9] the pool's prefix and fixed keys (see lib.lua and sessions_app/lua/lib.lua);
-- KEYS[10] <prefix>attempt:<chat id>, KEYS[11] <prefix>undone:<chat id>,
-- KEYS[12] <prefix>lease:<user>, KEYS[13] <prefix>user_interests:<user>,
-- KEYS[14] <prefix>user_session:<user>, KEYS[15] <prefix>recent:<user>,
-- KEYS[16 ..] <prefix>interest:<I> for each of the user's interests, in ARGV's order.
-- Popularity is counted by the caller after this call, the match counters once the
-- match is confirmed (bookkeeping.lua).
-- ARGV[1]  user id
-- ARGV[2]  stream token that will own the user's lease while they wait
-- ARGV[3]  lease length (ms)
-- ARGV[4]  chat id to use if a match is made (unique, made by the caller)
-- ARGV[5]  session time-to-live (s)
-- ARGV[6]  '1' if the service is in maintenance while service:maintenance is unset
-- ARGV[7]  rematch cooldown (ms, 0: none)
-- ARGV[8]  fallback delay (ms): 0 makes the user matchable with anyone at once; -1: off.
--          A random-chat user (interests exactly GLOBAL_CHAT) always has 0.
-- ARGV[9]  N, the number of fallback chat servers; ARGV[10 .. 9+N] the servers
-- ARGV[10+N ..] the user's normalized interests (at least one)
-- Returns one of:
--   {'UNDONE'}                               the caller gave up on this call and undid it
--                                            (undo_match.lua) before it ran: nothing done
--   {'MAINTENANCE'}
--   {'NO_CHAT_SERVER'}                       nothing was changed
--   {'WAITING', others waiting in the user's queues, previous}
--   the reply of create_match (lib.lua), then previous
-- where previous is the token of an older stream that held the user's place ('' if
-- none): the caller tells that stream it was replaced.

local ATTEMPT, UNDONE, LEASE, USER_INTERESTS, USER_SESSION = KEYS[10], KEYS[11], KEYS[12],
                                                             KEYS[13], KEYS[14]
if redis.call('EXISTS', UNDONE) == 1 then
  return {'UNDONE'}
end
local maintenance = redis.call('GET', MAINTENANCE)
if maintenance == '1' or (not maintenance and ARGV[6] == '1') then
  return {'MAINTENANCE'}
end

local user, token, lease_ms = ARGV[1], ARGV[2], ARGV[3]
local chat_id, session_ttl = ARGV[4], ARGV[5]
local cooldown_ms, fallback_after = tonumber(ARGV[7]), tonumber(ARGV[8])
local n_fallback = tonumber(ARGV[9])

local fallback_servers = {}
for i = 1, n_fallback do
  fallback_servers[i] = ARGV[9 + i]
end
local servers = chat_servers(fallback_servers)
if #servers == 0 then
  return {'NO_CHAT_SERVER'}
end

local interests = {}
for i = 10 + n_fallback, #ARGV do
  interests[#interests + 1] = ARGV[i]
end
-- Random chat: a user who gave no interests accepts anyone, so they wait in
-- queue:fallback too and meet other random-chat users and users past their fallback.
local random_chat = #interests == 1 and interests[1] == 'GLOBAL_CHAT'
if random_chat then
  fallback_after = 0
end

local now = now_us()
local now_ms = math.floor(now / 1000)
local previous = redis.call('GET', LEASE) or ''

end_user_session(USER_SESSION)
leave_queues(user)

-- Each queue is ordered by enqueue time and a user has the same time in all their
-- queues, so the oldest of the queues' eligible users is the oldest compatible user.
local partner, partner_since = nil, nil
for i = 1, #interests do
  local candidate, since = oldest_eligible(KEYS[15 + i], user, now_ms, cooldown_ms)
  if candidate and (partner == nil or since < partner_since
      or (since == partner_since and candidate < partner)) then
    partner, partner_since = candidate, since
  end
end

-- Anyone who accepts anyone: only when no interest matches, except for a random-chat
-- user, to whom every partner is equal and the oldest comes first.
if fallback_after == 0 and (partner == nil or random_chat) then
  local anyone, since = oldest_eligible(FALLBACK, user, now_ms, cooldown_ms)
  if anyone and (partner == nil or since < partner_since) then
    partner, partner_since = anyone, since
  end
end

if partner then
  local partner_interests = user_interests_key(partner)
  local shared = {}
  for _, interest in ipairs(interests) do
    if redis.call('SISMEMBER', partner_interests, interest) == 1 then
      shared[#shared + 1] = interest
    end
  end
  -- No shared interest (GLOBAL_CHAT counts for two random-chat users): a fallback match.
  local reply = create_match(user, partner, partner_since, shared, #shared == 0, chat_id,
                             servers, now, session_ttl, cooldown_ms)
  reply[#reply + 1] = previous
  return reply
end

for i, interest in ipairs(interests) do
  redis.call('ZADD', KEYS[15 + i], now, user)
  note_queue_size(interest)
end
redis.call('SADD', USER_INTERESTS, unpack(interests))
redis.call('ZADD', WAITING, now, user)
if fallback_after == 0 then
  redis.call('ZADD', FALLBACK, now, user)
end
redis.call('SET', LEASE, token, 'PX', lease_ms)
-- For undo_match.lua, should the caller never get this reply: only while it may come.
redis.call('SET', ATTEMPT, 'W', 'EX', 60)
local reply = queue_info(user, interests)
reply[#reply + 1] = previous
return reply
