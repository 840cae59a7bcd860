-- undo_match: settles a matcher call whose caller did not get the reply (a timeout, a
-- cancelled task, a connection lost mid-reply), or a pending match whose confirmation
-- the partner has waited too long for. Atomic, and idempotent: the same outcome however
-- often it runs, and whether the call ran before it, after it (then it does nothing:
-- see undone:<id>) or never.
--
-- KEYS[1..9] the pool's prefix and fixed keys (see lib.lua and sessions_app/lua/lib.lua);
-- KEYS[10] <prefix>attempt:<chat id>, KEYS[11] <prefix>undone:<chat id>,
-- KEYS[12] <prefix>lease:<user>, KEYS[13] <prefix>user_interests:<user>,
-- KEYS[14] <prefix>user_session:<user>, KEYS[15] <prefix>recent:<user>.
-- The keys of a partner and of a later call are named from the prefix (see lib.lua).
-- ARGV[1] chat id the matcher call was given
-- ARGV[2] the caller's user id, ARGV[3] the caller's stream token
-- ARGV[4] lease length (ms) for a partner given their place back
-- Returns {'UNDONE'}: nothing of the call remains; a partner has their place back, with
--           their original enqueue time, and was told nothing;
--         {'MATCHED', session JSON}: the user's match stands (it had been confirmed:
--           its other side was or will be told), so the caller tells the user.

local chat_id, user, token, lease_ms = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local TOMBSTONE_S = 3600  -- longer than any call can sit unread in Redis

local function standing(id)
  local session = redis.call('GET', session_key(id))
  if session then
    return {'MATCHED', session}
  end
  return {'UNDONE'}  -- ended since
end

-- Ends a pending match: the session goes, and the partner gets their place back if
-- restore (not when the partner is the user giving up on the call that queued them).
local function undo_pending(id, pending, restore)
  end_session(id)
  redis.call('DEL', attempt_key(id))
  redis.call('SET', undone_key(id), '1', 'EX', TOMBSTONE_S)
  redis.call('ZREM', recent_key(pending.user), pending.partner)
  redis.call('ZREM', recent_key(pending.partner), pending.user)
  if restore then
    restore_partner(pending, lease_ms)
  end
end

local ATTEMPT, UNDONE, LEASE, USER_SESSION = KEYS[10], KEYS[11], KEYS[12], KEYS[14]
if redis.call('EXISTS', UNDONE) == 1 then
  return {'UNDONE'}
end
local attempt = redis.call('GET', ATTEMPT)

if not attempt then
  -- Never ran (and now never will), or its match was confirmed.
  if redis.call('GET', USER_SESSION) == chat_id then
    return standing(chat_id)
  end
  redis.call('SET', UNDONE, '1', 'EX', TOMBSTONE_S)
  return {'UNDONE'}
end

redis.call('SET', UNDONE, '1', 'EX', TOMBSTONE_S)
if attempt ~= 'W' then
  undo_pending(chat_id, cjson.decode(attempt), true)
  return {'UNDONE'}
end

-- The call queued the user. Still waiting: leave. Matched since by a later arrival:
-- a confirmed match stands (the other side was told), a pending one is undone too.
redis.call('DEL', ATTEMPT)
if redis.call('GET', LEASE) == token then
  redis.call('DEL', LEASE)
  leave_queues(user)
  return {'UNDONE'}
end
local later = redis.call('GET', USER_SESSION)
if later then
  local pending = redis.call('GET', attempt_key(later))
  if not pending then
    return standing(later)
  end
  if pending ~= 'W' then
    undo_pending(later, cjson.decode(pending), false)
  end
end
return {'UNDONE'}
