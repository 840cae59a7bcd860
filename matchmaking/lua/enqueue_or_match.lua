-- enqueue_or_match: the whole matchmaking decision for one arriving user, atomically.
--
-- KEYS: none (see lib.lua for every key touched). Also reads service:maintenance.
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

if undone(ARGV[4]) then
  return {'UNDONE'}
end
local maintenance = redis.call('GET', 'service:maintenance')
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
local previous = redis.call('GET', 'lease:' .. user) or ''

end_user_session(user)
leave_queues(user)

-- Each queue is ordered by enqueue time and a user has the same time in all their
-- queues, so the oldest of the queues' eligible users is the oldest compatible user.
local partner, partner_since = nil, nil
for _, interest in ipairs(interests) do
  local candidate, since = oldest_eligible('interest:' .. interest, user, now_ms, cooldown_ms)
  if candidate and (partner == nil or since < partner_since
      or (since == partner_since and candidate < partner)) then
    partner, partner_since = candidate, since
  end
end

-- Anyone who accepts anyone: only when no interest matches, except for a random-chat
-- user, to whom every partner is equal and the oldest comes first.
if fallback_after == 0 and (partner == nil or random_chat) then
  local anyone, since = oldest_eligible('queue:fallback', user, now_ms, cooldown_ms)
  if anyone and (partner == nil or since < partner_since) then
    partner, partner_since = anyone, since
  end
end

if partner then
  local partner_interests = 'user_interests:' .. partner
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

for _, interest in ipairs(interests) do
  redis.call('ZADD', 'interest:' .. interest, now, user)
  note_queue_size(interest)
end
redis.call('SADD', 'user_interests:' .. user, unpack(interests))
redis.call('ZADD', 'queue:waiting', now, user)
if fallback_after == 0 then
  redis.call('ZADD', 'queue:fallback', now, user)
end
redis.call('SET', 'lease:' .. user, token, 'PX', lease_ms)
-- For undo_match.lua, should the caller never get this reply: only while it may come.
redis.call('SET', 'attempt:' .. chat_id, 'W', 'EX', 60)
local reply = queue_info(user, interests)
reply[#reply + 1] = previous
return reply
