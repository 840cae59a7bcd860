-- count_interests: counts one arrival's interests in the popularity bucket of its time.
--
-- Bookkeeping sent after the matcher call (it needs no atomicity with the match).
-- KEYS: none. Writes, both expiring once the popularity window has passed them:
--   <bucket>        ZSET interest -> requests counted in the bucket
--   <bucket>:over   ZSET interest -> how many of those may be over-counted (see below)
-- ARGV[1] the bucket's key, popular:<bucket seconds>s:<bucket number>
-- ARGV[2] capacity: how many interests one bucket tracks at most
-- ARGV[3] the bucket's lifetime (s)
-- ARGV[4 ..] the arrival's interests
-- Each interest costs O(log capacity), whatever the number of distinct interests asked
-- for. A full bucket follows the Space-Saving algorithm: a newcomer takes the place of
-- the least counted interest and inherits its count plus one, so a flood of rare
-- interests can never push out one asked for often (any interest with more than
-- 1/capacity of a bucket's requests stays in it). The inherited part is recorded in
-- <bucket>:over, and readers subtract it: counts shown are never over-estimated.
-- Returns nothing.

local key, capacity = ARGV[1], tonumber(ARGV[2])
local over = key .. ':over'
for i = 4, #ARGV do
  local interest = ARGV[i]
  if redis.call('ZSCORE', key, interest) or redis.call('ZCARD', key) < capacity then
    redis.call('ZINCRBY', key, 1, interest)
  else
    local least = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    redis.call('ZREM', key, least[1])
    redis.call('ZREM', over, least[1])
    redis.call('ZADD', key, tonumber(least[2]) + 1, interest)
    redis.call('ZADD', over, least[2], interest)
  end
end
redis.call('EXPIRE', key, ARGV[3])
redis.call('EXPIRE', over, ARGV[3])
