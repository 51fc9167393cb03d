-- Give a lease up; wake workers when inputs are still waiting (appends made while the lease
-- was live did not wake anyone).
-- KEYS: meta in out log snap lease seats members chan
-- ARGV: owner, epoch, wake_channel, room_id
local lease = redis.call('HMGET', KEYS[6], 'o', 'e')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[6])
-- Commits trim consumed inputs exactly, so what is left is unconsumed.
if redis.call('XLEN', KEYS[2]) > 0 then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return 1
