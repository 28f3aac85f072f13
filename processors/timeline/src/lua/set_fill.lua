-- Finish loading a set from the store, unless the load was cancelled.
-- KEYS[1] set, KEYS[2] its load marker; ARGV[1] the load's token, ARGV[2..] members.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
redis.call('SADD', KEYS[1], '')
for i = 2, #ARGV, 5000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 4999, #ARGV)))
end
redis.call('DEL', KEYS[2])
return 1
