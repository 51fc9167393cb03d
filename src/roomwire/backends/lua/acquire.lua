-- Take a room's lease with a new epoch when it is free, expired or already the caller's.
-- KEYS: meta in out log snap lease seats members chan
-- ARGV: owner, ttl_ms, counter (a fresh value of the namespace's epoch counter)
-- Returns the new epoch (> 0), 0 (someone else holds a live lease) or -1 (no such room).
local last = redis.call('HMGET', KEYS[1], 'E', 'n')
if not last[2] then
  return -1
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local lease = redis.call('HMGET', KEYS[6], 'o', 'x')
if lease[1] and lease[1] ~= ARGV[1] and tonumber(lease[2]) > now then
  return 0
end
-- Promise 4: strictly above every epoch this room handed out, whatever order concurrent
-- acquisitions reach Redis in and even if the namespace counter went back (meta 'E' keeps the
-- room's last epoch; the counter keeps epochs growing across delete and re-create of an id).
local epoch = math.max(tonumber(ARGV[3]), tonumber(last[1] or '0') + 1)
-- A claimed room is no longer hibernating (hibernate.lua marks it).
redis.call('HSET', KEYS[1], 'E', epoch, 'h', 0)
redis.call('HSET', KEYS[6], 'o', ARGV[1], 'e', epoch, 'x', now + tonumber(ARGV[2]))
return epoch
