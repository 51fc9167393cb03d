-- Hold a seat for a player until now + ttl (server time).
-- KEYS: meta in out log snap lease seats members chan
-- ARGV: player, ttl_ms
-- Returns 1 (held), 0 (full) or -1 (no such room).
local m = redis.call('HMGET', KEYS[1], 'm', 'p')
if not m[1] then
  return -1
end
if redis.call('SISMEMBER', KEYS[8], ARGV[1]) == 1 then
  return 1
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now)
local held = redis.call('ZSCORE', KEYS[7], ARGV[1])
if not held and tonumber(m[2] or '0') + redis.call('ZCARD', KEYS[7]) >= tonumber(m[1]) then
  return 0
end
local expiry = now + tonumber(ARGV[2])
if held and tonumber(held) > expiry then
  expiry = tonumber(held)
end
redis.call('ZADD', KEYS[7], expiry, ARGV[1])
return 1
