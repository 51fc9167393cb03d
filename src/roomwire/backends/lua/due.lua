-- Does the room need a worker? (one room of a sweep; scheduling follows pending input)
-- KEYS: meta in out log snap lease seats members chan
-- Returns 1 when the room exists, has no live lease, and is not hibernating or has input
-- appended above its committed offset; else 0.
local meta = redis.call('HMGET', KEYS[1], 'n', 'h')
if not meta[1] then
  return 0
end
local expiry = redis.call('HGET', KEYS[6], 'x')
if expiry then
  local t = redis.call('TIME')
  if tonumber(expiry) > t[1] * 1000 + math.floor(t[2] / 1000) then
    return 0
  end
end
if meta[2] ~= '1' then
  return 1
end
if tonumber(meta[1]) > tonumber(redis.call('HGET', KEYS[5], 'o') or '0') then
  return 1
end
return 0
