-- Register a room and append its first input (offset 1), atomically.
-- KEYS: meta in out log snap lease seats members chan (one hash slot: the room's tag)
-- ARGV: record, type, max_players, players, first_input, wake_channel, room_id
-- Returns 1, or 0 when the room already exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
-- A deleted room leaves its inbound stream behind for a few seconds (a tombstone that wakes
-- blocked readers): a re-created room starts from offset 1 again.
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
local t = redis.call('TIME')
-- The incarnation tells subscribers that a room id was deleted and created again.
local incarnation = t[1] .. string.format('%06d', tonumber(t[2]))
redis.call('HSET', KEYS[1], 'r', ARGV[1], 't', ARGV[2], 'm', ARGV[3], 'p', ARGV[4], 'n', 1, 'i', incarnation)
redis.call('XADD', KEYS[2], '0-1', 'd', ARGV[5])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
