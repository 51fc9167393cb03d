-- Remove a room from the namespace's registry index.
-- KEYS: all rooms, rooms of its type
-- ARGV: room_id
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
