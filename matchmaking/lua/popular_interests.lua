-- popular_interests: the interests most users asked for within the window.
--
-- KEYS: none. Reads popular:index (ZSET interest -> last request, ms) and
-- popular:<I> (ZSET user -> request time, ms), pruning entries older than the window
-- so only interests seen inside it are visited: O(interests in window), no keyspace walk.
-- ARGV[1] window (ms), ARGV[2] how many to return
-- Returns a flat list {interest, count, interest, count, ...}, most popular first.

local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])
local limit = tonumber(ARGV[2])

redis.call('ZREMRANGEBYSCORE', 'popular:index', '-inf', cutoff)
local rows = {}
for _, interest in ipairs(redis.call('ZRANGE', 'popular:index', 0, -1)) do
  local key = 'popular:' .. interest
  redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
  local count = redis.call('ZCARD', key)
  if count > 0 then
    rows[#rows + 1] = {interest, count}
  end
end
table.sort(rows, function(a, b)
  if a[2] ~= b[2] then
    return a[2] > b[2]
  end
  return a[1] < b[1]
end)

local result = {}
for i = 1, math.min(limit, #rows) do
  result[#result + 1] = rows[i][1]
  result[#result + 1] = rows[i][2]
end
return result
