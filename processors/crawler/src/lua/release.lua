-- Give a host lease up, only if this fetch loop still holds it.
-- KEYS[1] lease key; ARGV[1] this fetch loop's id. Returns 1 if released.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
