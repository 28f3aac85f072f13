-- Read one page of a complete home timeline, newest first, and keep it alive.
-- KEYS[1] home timeline; ARGV[1] upper bound ("+inf" or "(<id>"), ARGV[2] page size,
-- ARGV[3] time to live (ms), ARGV[4] cap.
-- Returns false when the timeline is absent or incomplete (no sentinel): rebuild it.
-- Otherwise { floor, ids... }: floor is the oldest id kept when the timeline is full (older
-- tweets were trimmed away, so merged-in tweets must not go below it), or 0.
if not redis.call('ZSCORE', KEYS[1], '_') then
  return false
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local floor = 0
if redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[4]) then
  floor = redis.call('ZRANGE', KEYS[1], 1, 1)[1]
end
local page = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], 0, 'LIMIT', 0, ARGV[2])
table.insert(page, 1, floor)
return page
