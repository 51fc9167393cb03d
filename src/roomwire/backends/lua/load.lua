-- A room's last commit: snapshot, inbound offset, last seq.
-- KEYS: meta in out log snap lease seats members chan
-- Returns -1 when the room does not exist, else {snapshot or false, offset, last seq}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
return redis.call('HMGET', KEYS[5], 'b', 'o', 's')
