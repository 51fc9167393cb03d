-- Extend a held lease to now + ttl.
-- KEYS: meta in out log snap lease seats members chan
-- ARGV: owner, epoch, ttl_ms
-- Returns 1, or {0, current epoch or ''} when (owner, epoch) is not the current lease.
local lease = redis.call('HMGET', KEYS[6], 'o', 'e')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then
  return {0, lease[2] or ''}
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[6], 'x', t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[3]))
return 1
