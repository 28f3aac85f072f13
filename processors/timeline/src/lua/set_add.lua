-- Add members to a cached set (social graph), if it is cached or being loaded.
-- KEYS[1] set (complete when it holds the empty-string sentinel), KEYS[2] its load marker.
if redis.call('SISMEMBER', KEYS[1], '') == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SADD', KEYS[1], unpack(ARGV))
  return 1
end
return 0
