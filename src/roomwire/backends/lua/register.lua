-- Add a room to the namespace's registry index, in registration order.
-- KEYS: all rooms, rooms of its type, registration counter (one slot: the namespace's tag)
-- ARGV: room_id
local n = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[1], 'NX', n, ARGV[1])
redis.call('ZADD', KEYS[2], 'NX', n, ARGV[1])
return n
