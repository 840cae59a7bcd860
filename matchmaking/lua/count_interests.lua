-- count_interests: counts one arrival's interests in the popularity bucket of its time.
--
-- Bookkeeping sent after the matcher call (it needs no atomicity with the match).
-- KEYS: none. Writes popular:<bucket seconds>s:<bucket number> (ZSET interest ->
-- requests in that bucket), which expires once the popularity window has passed it.
-- ARGV[1] the bucket's key
-- ARGV[2] capacity: how many interests one bucket tracks at most
-- ARGV[3] the bucket's lifetime (s)
-- ARGV[4 ..] the arrival's interests
-- Each interest costs O(log capacity), whatever the number of distinct interests asked
-- for. A full bucket follows the Space-Saving algorithm: a newcomer takes the place of
-- the least counted interest and inherits its count plus one, so many rare interests
-- (a flood of made-up ones) can never starve out one that is asked for often; counts
-- may then be over-estimated by at most the count of the one replaced.
-- Returns nothing.

local key, capacity = ARGV[1], tonumber(ARGV[2])
for i = 4, #ARGV do
  local interest = ARGV[i]
  if redis.call('ZSCORE', key, interest) or redis.call('ZCARD', key) < capacity then
    redis.call('ZINCRBY', key, 1, interest)
  else
    local least = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    redis.call('ZREM', key, least[1])
    redis.call('ZADD', key, tonumber(least[2]) + 1, interest)
  end
end
redis.call('EXPIRE', key, ARGV[3])
