-- stream_slot: the slots of one client address's concurrent /matchmaking streams,
-- counted across every process of the service.
--
-- KEYS[1] streams:<client> ZSET stream token -> end of the slot's lease (ms, by
-- Redis' clock, the same for every process). A slot lapses with its lease unless its
-- stream renews it at each keepalive, so a process killed without cleaning up holds
-- its slots for one lease at most; the key expires with its last slot.
-- Not a pool's: a client's streams are counted whatever pools they ask for.
-- ARGV[1] stream token, ARGV[2] lease (ms)
-- ARGV[3] 'claim': take a slot unless the client holds ARGV[4] live ones already;
--         'renew': extend the slot's lease if the stream still holds it
-- Returns 1 if the slot was claimed or renewed, else 0.

local key, token, lease_ms = KEYS[1], ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == 'renew' then
  if not redis.call('ZSCORE', key, token) then
    return 0
  end
else
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms)
  if redis.call('ZCARD', key) >= tonumber(ARGV[4]) then
    return 0
  end
end
redis.call('ZADD', key, now_ms + lease_ms, token)
if redis.call('PTTL', key) < lease_ms then
  redis.call('PEXPIRE', key, lease_ms)
end
return 1
