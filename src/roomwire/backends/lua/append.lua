-- Append one input to a room's inbound stream; its offset is the stream entry id 0-<offset>.
-- KEYS: meta in out log snap lease seats members chan
-- ARGV: input, wake_channel, room_id
-- Returns the offset, or -1 when the room does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('XADD', KEYS[2], '0-' .. n, 'd', ARGV[1])
-- Wake workers only for a room nobody runs: a live lease holder reads the stream itself.
local expiry = redis.call('HGET', KEYS[6], 'x')
if not expiry then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
else
  local t = redis.call('TIME')
  if tonumber(expiry) <= t[1] * 1000 + math.floor(t[2] / 1000) then
    redis.call('PUBLISH', ARGV[2], ARGV[3])
  end
end
return n
