-- Read one page of a complete home timeline, newest first, and keep it alive.
-- KEYS[1] home timeline; ARGV[1] upper bound ("+inf" or "(<id>"), ARGV[2] page size,
-- ARGV[3] time to live (ms).
-- Returns false when the timeline is absent or incomplete (no sentinel): rebuild it.
if not redis.call('ZSCORE', KEYS[1], '_') then
  return false
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], 0, 'LIMIT', 0, ARGV[2])
