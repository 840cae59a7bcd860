-- rate_limit: counts one request of a client in the current window of its limit.
--
-- One script call rather than a MULTI/EXEC of INCR and EXPIRE: it rides in the command
-- batch of its event-loop turn (see animochat/redis_client.py) and the counter never
-- exists without its expiry.
-- KEYS[1] the window's key, ratelimit:<group>:<client>:<window> (STRING, the counter)
-- ARGV[1] its lifetime (s), from the first request counted in it
-- Returns the requests counted in the window, this one included.

local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
