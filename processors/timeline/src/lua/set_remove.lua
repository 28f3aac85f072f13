-- Remove members from a cached set and cancel a load in progress (it may have read them).
-- KEYS[1] set, KEYS[2] its load marker; ARGV members.
redis.call('SREM', KEYS[1], unpack(ARGV))
redis.call('DEL', KEYS[2])
return 1
