-- What a subscriber missed: commits after commit number after_c, events after seq after_seq.
-- KEYS: meta in out log snap lease seats members chan
-- ARGV: after_c, after_seq
-- Returns false when the room does not exist, else
-- {incarnation, last commit number, last seq, log entries, event entries}.
local incarnation = redis.call('HGET', KEYS[1], 'i')
if not incarnation then
  return false
end
local snap = redis.call('HMGET', KEYS[5], 'c', 's')
local c = tonumber(snap[1] or '0')
local last = tonumber(snap[2] or '0')
local log = {}
if c > tonumber(ARGV[1]) then
  log = redis.call('XRANGE', KEYS[4], '0-' .. (tonumber(ARGV[1]) + 1), '+')
end
local events = {}
if last > tonumber(ARGV[2]) then
  events = redis.call('XRANGE', KEYS[3], '0-' .. (tonumber(ARGV[2]) + 1), '+')
end
return {incarnation, c, last, log, events}
