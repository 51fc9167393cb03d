-- A room's registry record, current player count, live reservations and hibernation mark.
-- KEYS: meta in out log snap lease seats members chan
-- Returns false when the room does not exist, else {record, players, reserved, hibernating}.
local m = redis.call('HMGET', KEYS[1], 'r', 'p', 'h')
if not m[1] then
  return false
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
return {m[1], m[2], redis.call('ZCOUNT', KEYS[7], '(' .. now, '+inf'), m[3] or '0'}
