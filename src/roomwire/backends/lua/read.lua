-- Inputs with offset > after, at most limit (the non-blocking part of read_inputs).
-- KEYS: meta in out log snap lease seats members chan
-- ARGV: after, limit
-- Returns -1 when the room does not exist, else the stream entries.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
return redis.call('XRANGE', KEYS[2], '0-' .. (tonumber(ARGV[1]) + 1), '+', 'COUNT', ARGV[2])
