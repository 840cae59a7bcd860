-- record_history: adds to one minute of the admin's Overview (the last hour, per minute).
--
-- Bookkeeping sent after the matcher call (it needs no atomicity with the match); one
-- script call rather than several commands, so it rides in the command batch of its
-- event-loop turn and its key never exists without its expiry.
-- KEYS: none. Reads queue:waiting; writes, expiring at ARGV[2]:
--   history:<minute>  ZSET member -> value: counters (matches, le:<seconds> per
--                     time-to-match bucket, redis_errors) and waiting, a maximum
-- ARGV[1] the minute's key, history:<whole minutes since the epoch>
-- ARGV[2] when the key expires (unix seconds): an hour after the minute ends
-- ARGV[3] '1' to record the number of users waiting now as a candidate maximum, else '0'
-- ARGV[4 ..] member, increment pairs
-- Returns the number of users waiting that was recorded, or -1.

local key = ARGV[1]
for i = 4, #ARGV - 1, 2 do
  redis.call('ZINCRBY', key, ARGV[i + 1], ARGV[i])
end
local waiting = -1
if ARGV[3] == '1' then
  waiting = redis.call('ZCARD', 'queue:waiting')
  redis.call('ZADD', key, 'GT', waiting, 'waiting')
end
if ARGV[3] == '1' or #ARGV > 3 then
  redis.call('EXPIREAT', key, ARGV[2])
end
return waiting
