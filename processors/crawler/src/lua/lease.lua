-- Take a free host lease or renew our own, atomically.
-- KEYS[1] lease key; ARGV[1] this fetch loop's id, ARGV[2] time to live (ms).
-- Returns 1 when the lease is ours (taken or renewed), 0 when another loop holds it.
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
