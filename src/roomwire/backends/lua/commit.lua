-- One journal step of a room, atomically (Promise 1, 2, 4).
-- KEYS: meta in out log snap lease seats members chan
-- ARGV: 1 epoch, 2 history, 3 inbound_offset, 4 snapshot, 5 players ('' = unchanged),
--       6 ended ('' = no), 7 first seq, 8 event count, 9 Published (encoded), 10 receipts
--       (encoded, '' = none), 11 joined count, 12 removed count, 13 log length,
--       then the joined players, the removed players and the encoded events.
-- Returns {0, commit number}, {0, commit number, room type} when the room ended,
-- {1, current epoch or ''} stale lease, {2, last seq} seq conflict,
-- {3, committed offset, last offset} offset conflict.
local epoch = redis.call('HGET', KEYS[6], 'e')
if epoch ~= ARGV[1] then
  return {1, epoch or ''}
end
local meta = redis.call('HMGET', KEYS[1], 'n', 'i', 't')
local snap = redis.call('HMGET', KEYS[5], 's', 'o', 'c')
local last_seq = tonumber(snap[1] or '0')
local committed = tonumber(snap[2] or '0')
local c = tonumber(snap[3] or '0') + 1
local count = tonumber(ARGV[8])
local first = tonumber(ARGV[7])
if count > 0 and first ~= last_seq + 1 then
  return {2, last_seq}
end
local offset = tonumber(ARGV[3])
local appended = tonumber(meta[1])
if offset < committed or offset > appended then
  return {3, committed, appended}
end
-- Subscribers order commits by (incarnation, commit number) and detect gaps with it.
local message = meta[2] .. ':' .. c .. '|' .. ARGV[9]
if ARGV[6] ~= '' then
  -- Ended: publish, then remove the room as delete.lua does.
  redis.call('SPUBLISH', KEYS[9], message)
  redis.call('XADD', KEYS[2], '0-' .. (appended + 1), 'x', '1')
  redis.call('PEXPIRE', KEYS[2], 10000)
  redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
  return {0, c, meta[3]}
end
local joined = tonumber(ARGV[11])
local removed = tonumber(ARGV[12])
for i = 14, 13 + joined do
  redis.call('ZREM', KEYS[7], ARGV[i])
  redis.call('SADD', KEYS[8], ARGV[i])
end
for i = 14 + joined, 13 + joined + removed do
  redis.call('SREM', KEYS[8], ARGV[i])
end
local ev = 13 + joined + removed
for i = 1, count do
  redis.call('XADD', KEYS[3], '0-' .. (first + i - 1), 'e', ARGV[ev + i])
end
local new_last = last_seq + count
-- History: keep exactly the last `history` events (exact trim, so the window is what the room
-- type says, not more).
local keep_from = new_last - tonumber(ARGV[2]) + 1
if keep_from > 1 then
  redis.call('XTRIM', KEYS[3], 'MINID', '0-' .. keep_from)
end
-- Consumed inputs are not needed again: recovery continues after the committed offset.
if offset > 0 then
  redis.call('XTRIM', KEYS[2], 'MINID', '0-' .. (offset + 1))
end
redis.call('HSET', KEYS[5], 'b', ARGV[4], 'o', offset, 's', new_last, 'c', c)
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'p', ARGV[5])
end
-- The commit log lets a subscriber that lost its pub/sub connection replay commits exactly,
-- receipts included, for the last ARGV[13] commits (approximately: trimmed in whole nodes).
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[13], '0-' .. c, 'f', first, 'n', count, 'r', ARGV[10])
redis.call('SPUBLISH', KEYS[9], message)
return {0, c}
