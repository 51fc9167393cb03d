-- Committed events with seq > after, from the kept history.
-- KEYS: meta in out log snap lease seats members chan
-- ARGV: after, count (0: every kept event after `after`; else at most that many)
-- Returns -1 when the room does not exist, else {last seq, entries}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local last = tonumber(redis.call('HGET', KEYS[5], 's') or '0')
if tonumber(ARGV[1]) >= last then
  return {last, {}}
end
local count = tonumber(ARGV[2] or '0')
if count > 0 then
  return {last, redis.call('XRANGE', KEYS[3], '0-' .. (tonumber(ARGV[1]) + 1), '+', 'COUNT', count)}
end
return {last, redis.call('XRANGE', KEYS[3], '0-' .. (tonumber(ARGV[1]) + 1), '+')}
