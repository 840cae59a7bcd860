-- sweep_lapsed_waiters: removes waiting users whose lease lapsed (their stream died with
-- its server) from every queue, examining one bounded batch of queue:waiting per call.
--
-- The matcher already drops such users when they reach a queue head; until then they
-- would still be counted as waiting (queue sizes, /status usersInQueue). Batches keep
-- each call short, so Redis is never blocked by a long queue.
--
-- KEYS[1..9] the pool's prefix and fixed keys (see lib.lua and sessions_app/lua/lib.lua).
-- Reads queue:waiting and lease:<u>; removes lapsed users with leave_queues
-- (interest:<I>, user_interests:<u>, queue:interests, queue:waiting), all of the pool.
-- ARGV[1] rank in queue:waiting to start from: 0 to begin a pass, else the cursor the
--         previous call returned
-- ARGV[2] how many waiting users to examine
-- Returns {cursor, removed}: the rank to continue from (-1 when the pass is complete)
-- and how many lapsed users this call removed.

local start, count = tonumber(ARGV[1]), tonumber(ARGV[2])
local users = redis.call('ZRANGE', WAITING, start, start + count - 1)
local removed = 0
for _, user in ipairs(users) do
  if redis.call('EXISTS', lease_key(user)) == 0 then
    leave_queues(user)
    removed = removed + 1
  end
end
if #users < count then
  return {-1, removed}
end
-- Removed users no longer take up ranks: the first unexamined user moved up by that many.
return {start + count - removed, removed}
