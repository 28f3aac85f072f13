-- Finish a rebuild: write what was read from the store, unless the rebuild was cancelled.
-- KEYS[1] home timeline, KEYS[2] its rebuild marker
-- ARGV[1] the rebuild's token, ARGV[2] cap, ARGV[3] time to live (ms), ARGV[4..] tweet ids
-- Ids pushed while the rebuild ran are already in the set; ZADD unions them. Returns 1 if
-- written, 0 if cancelled (a removal ran meanwhile; the next read rebuilds again).
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
redis.call('ZADD', KEYS[1], -1, '_')
for i = 4, #ARGV do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i])
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(tonumber(ARGV[2]) + 1))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('DEL', KEYS[2])
return 1
