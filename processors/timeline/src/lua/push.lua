-- Push tweet ids into one home timeline, if it is cached.
-- KEYS[1] home timeline (sorted set, score = member = tweet id, sentinel "_" at -1 when complete)
-- KEYS[2] the rebuild marker of that timeline (a rebuild is reading the store right now)
-- ARGV[1] cap (tweets kept), ARGV[2] time to live (ms) of a timeline being rebuilt,
-- ARGV[3..] tweet ids
-- A complete timeline gets the ids and is trimmed to the newest `cap`; a timeline being rebuilt
-- gets them untrimmed (the rebuild's own write trims) and a time to live, so that the ids do
-- not outlive an abandoned rebuild for ever; an absent one is left absent, because a timeline
-- holding only the newest push would look complete and hide everything older: the next read
-- rebuilds it from the store instead. Returns 1, 2 or 0 for those three cases.
local complete = redis.call('ZSCORE', KEYS[1], '_')
local building = (not complete) and redis.call('EXISTS', KEYS[2]) == 1
if not complete and not building then
  return 0
end
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i])
end
if complete then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(tonumber(ARGV[1]) + 1))
  return 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 2
