-- stream_slot: the slots of one client address's concurrent /matchmaking streams,
-- counted across every process of the service.
--
-- KEYS: none. streams:<client> ZSET stream token -> end of the slot's lease (ms, by
-- Redis' clock, the same for every process). A slot lapses with its lease unless its
-- stream renews it at each keepalive, so a process killed without cleaning up holds
-- its slots for one lease at most; the key expires with its last slot.
-- ARGV[1] the key, ARGV[2] stream token, ARGV[3] lease (ms)
-- ARGV[4] 'claim': take a slot unless the client holds ARGV[5] live ones already;
--         'renew': extend the slot's lease if the stream still holds it
-- Returns 1 if the slot was claimed or renewed, else 0.

local key, token, lease_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[4] == 'renew' then
  if not redis.call('ZSCORE', key, token) then
    return 0
  end
else
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms)
  if redis.call('ZCARD', key) >= tonumber(ARGV[5]) then
    return 0
  end
end
redis.call('ZADD', key, now_ms + lease_ms, token)
if redis.call('PTTL', key) < lease_ms then
  redis.call('PEXPIRE', key, lease_ms)
end
return 1
