-- Members of a complete cached set (the sentinel included), or false when it must be loaded.
-- KEYS[1] set.
if redis.call('SISMEMBER', KEYS[1], '') == 1 then
  return redis.call('SMEMBERS', KEYS[1])
end
return false
