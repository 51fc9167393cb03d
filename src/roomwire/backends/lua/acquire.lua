-- Take a room's lease with a new epoch (from the namespace counter) when it is free, expired
-- or already the caller's.
-- KEYS: meta in out log snap lease seats members chan
-- ARGV: owner, ttl_ms, epoch
-- Returns 1 (taken), 0 (someone else holds a live lease) or -1 (no such room).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local lease = redis.call('HMGET', KEYS[6], 'o', 'x')
if lease[1] and lease[1] ~= ARGV[1] and tonumber(lease[2]) > now then
  return 0
end
redis.call('HSET', KEYS[6], 'o', ARGV[1], 'e', ARGV[3], 'x', now + tonumber(ARGV[2]))
return 1
