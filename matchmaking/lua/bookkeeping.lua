-- bookkeeping: what the arrivals and matches of one event-loop turn add to the counters
-- of the service, in one call whatever their number.
--
-- None of it needs atomicity with a match, so it stays out of the matcher's scripts
-- (which run under Redis' lock) and is sent after their replies (services.py gathers a
-- turn's worth), one call per match pool: every key is the pool's (its readers add the
-- pools up). Three sections, each possibly empty.
-- KEYS[1..9] the pool's prefix and fixed keys (see lib.lua and sessions_app/lua/lib.lua);
-- KEYS[10] <prefix>history:<minute>  ZSET member -> value: counters (matches,
--                         le:<seconds> per time-to-match bucket, redis_errors) and
--                         waiting, a maximum; expires an hour after its minute (the
--                         admin's Overview)
-- KEYS[11] <prefix>popular:<s>s:<n>  ZSET interest -> requests counted in the bucket
-- KEYS[12] <prefix>popular:<s>s:<n>:over  ZSET interest -> how many of those may be
--                         over-counted; both expire once the popularity window has
--                         passed them
-- KEYS[13] <prefix>metrics:matches, KEYS[14] <prefix>metrics:time_to_match (see
--                         lib.lua; /metrics reads them)
-- ARGV, in order:
--   history:    when the minute's key expires (unix seconds), '1' to record the number
--               of users waiting now as a candidate maximum (else '0'), H, then H
--               member, increment pairs
--   popularity: capacity (interests one bucket tracks at most), the bucket's lifetime
--               (s), P, then P interest, requests pairs
--   metrics:    M, then M field, increment pairs of metrics:matches; T, then T field,
--               increment pairs of metrics:time_to_match
-- Popularity costs O(log capacity) per interest, whatever the number of distinct
-- interests asked for. A full bucket follows the Space-Saving algorithm (weighted): a
-- newcomer takes the place of the least counted interest and inherits its count, so a
-- flood of rare interests can never push out one asked for often (any interest with
-- more than 1/capacity of a bucket's requests stays in it). The inherited part is
-- recorded in <bucket>:over, and readers subtract it: counts shown are never
-- over-estimated.
-- Returns the number of users waiting that was recorded, or -1.

local at = 1
local function take()
  at = at + 1
  return ARGV[at - 1]
end

local history, expires_at, sample = KEYS[10], take(), take()
local history_pairs = tonumber(take())
for _ = 1, history_pairs do
  local member = take()
  redis.call('ZINCRBY', history, take(), member)
end
local waiting = -1
if sample == '1' then
  waiting = redis.call('ZCARD', WAITING)
  redis.call('ZADD', history, 'GT', waiting, 'waiting')
end
if sample == '1' or history_pairs > 0 then
  redis.call('EXPIREAT', history, expires_at)
end

local bucket, over, capacity, lifetime = KEYS[11], KEYS[12], tonumber(take()), take()
local interests = tonumber(take())
for _ = 1, interests do
  local interest, requests = take(), tonumber(take())
  if redis.call('ZSCORE', bucket, interest) or redis.call('ZCARD', bucket) < capacity then
    redis.call('ZINCRBY', bucket, requests, interest)
  else
    local least = redis.call('ZRANGE', bucket, 0, 0, 'WITHSCORES')
    redis.call('ZREM', bucket, least[1])
    redis.call('ZREM', over, least[1])
    redis.call('ZADD', bucket, tonumber(least[2]) + requests, interest)
    redis.call('ZADD', over, least[2], interest)
  end
end
if interests > 0 then
  redis.call('EXPIRE', bucket, lifetime)
  redis.call('EXPIRE', over, lifetime)
end

for _, hash in ipairs({KEYS[13], KEYS[14]}) do
  for _ = 1, tonumber(take()) do
    local field = take()
    redis.call('HINCRBY', hash, field, take())
  end
end
return waiting
