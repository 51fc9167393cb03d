-- Put a room to sleep: mark it hibernating and release its lease, atomically, only for the
-- current lease (fencing: a stale epoch changes nothing). acquire.lua clears the mark.
-- KEYS: meta in out log snap lease seats members chan
-- ARGV: owner, epoch, wake_channel, room_id
-- Returns 1 (asleep) or 0 (not the current lease, or no such room).
local lease = redis.call('HMGET', KEYS[6], 'o', 'e')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] or redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('DEL', KEYS[6])
redis.call('HSET', KEYS[1], 'h', 1)
-- Inputs appended while the lease was live woke nobody: wake workers now (the sweep would
-- find the room anyway, see due.lua; this only makes it quick).
local committed = tonumber(redis.call('HGET', KEYS[5], 'o') or '0')
if tonumber(redis.call('HGET', KEYS[1], 'n')) > committed then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return 1
