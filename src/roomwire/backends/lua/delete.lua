-- Remove a room and everything stored for it.
-- KEYS: meta in out log snap lease seats members chan
-- Returns the room type (to remove it from the registry index), or false when it did not exist.
local meta = redis.call('HMGET', KEYS[1], 'n', 't')
if not meta[1] then
  return false
end
-- XREAD BLOCK is not woken by DEL: a tombstone entry wakes readers waiting on the room, and
-- the stream expires shortly after (create.lua deletes it when the id is used again).
redis.call('XADD', KEYS[2], '0-' .. (tonumber(meta[1]) + 1), 'x', '1')
redis.call('PEXPIRE', KEYS[2], 10000)
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
return meta[2]
