-- Push tweet ids into home timelines, each only if it is cached.
-- KEYS: pairs of (home timeline, its rebuild marker), one pair per timeline. Several timelines
--   per call amortize the script's fixed cost; all keys must be on one node (single Redis, or
--   one cluster slot per call).
-- ARGV[1] cap (tweets kept), ARGV[2] time to live (ms) of a timeline being rebuilt,
-- ARGV[3..] tweet ids
-- A timeline (sorted set, score = member = tweet id) is complete when it holds the sentinel
-- "_" at -1. A complete timeline gets the ids and is trimmed to the newest `cap`; a timeline
-- being rebuilt (marker present) gets them untrimmed (the rebuild's own write trims) and a
-- time to live, so that the ids do not outlive an abandoned rebuild; an absent one is left
-- absent, because a timeline holding only the newest push would look complete and hide
-- everything older: the next read rebuilds it from the store instead.
-- Returns how many timelines were written.
local cap = tonumber(ARGV[1])
local written = 0
for k = 1, #KEYS, 2 do
  local home, marker = KEYS[k], KEYS[k + 1]
  local complete = redis.call('ZSCORE', home, '_')
  if complete or redis.call('EXISTS', marker) == 1 then
    for i = 3, #ARGV do
      redis.call('ZADD', home, ARGV[i], ARGV[i])
    end
    if complete then
      if redis.call('ZCARD', home) > cap + 1 then
        redis.call('ZREMRANGEBYRANK', home, 1, -(cap + 1))
      end
    else
      redis.call('PEXPIRE', home, ARGV[2])
    end
    written = written + 1
  end
end
return written
