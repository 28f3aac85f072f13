-- Sixfold rate limiter: one script decides every limit of one identity in one round trip.
--
-- KEYS[i]   the state of limit i (all keys share one Redis Cluster hash tag)
-- ARGV[1]   "now" in microseconds since the Unix epoch, or "0" to read the server clock (TIME).
--           Only tests pass a value: it makes every algorithm's edges reproducible.
-- ARGV[2+3(i-1)..]  for limit i: algorithm code (tb, lb, fw, sl, sw), limit, window in
--           microseconds
--
-- Reply: {all_allowed, now, then per limit: allowed, remaining, reset_us, retry_us, delay_us}
-- (-1 for "none"). A request is taken only when every limit allows it; a denied request
-- consumes nothing anywhere (the first pass only reads, the second pass writes).
--
-- Every number is an integer in a double: microsecond timestamps (< 2^53) and bucket levels
-- counted in units of 1/window of a request (limit * window < 2^53, checked by the caller).

local function fmt(x)
  return string.format('%.0f', x)
end

-- Keeps idle state bounded: a key lives as long as it still matters, plus one second.
local function expire_after(key, us)
  redis.call('PEXPIRE', key, math.ceil(us / 1000) + 1000)
end

local function window_start(now, window)
  return now - math.fmod(now, window)
end
