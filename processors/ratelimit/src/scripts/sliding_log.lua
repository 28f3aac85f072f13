-- Sliding window log: a sorted set of the admitted requests' timestamps (score = microseconds);
-- a request at `now` sees the entries in (now - window, now]. Members are "<now>:<n>" with the
-- smallest free n, so requests in the same microsecond never collapse into one entry. Denied
-- requests are not logged.
local function sliding_log(key, limit, window, now, consume)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now - window))
  local count = redis.call('ZCARD', key)
  if count < limit then
    if consume then
      local n = count
      local member = fmt(now) .. ':' .. n
      while redis.call('ZSCORE', key, member) do
        n = n + 1
        member = fmt(now) .. ':' .. n
      end
      redis.call('ZADD', key, fmt(now), member)
      count = count + 1
      expire_after(key, window)
    end
    local reset = 0
    if count > 0 then
      local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
      reset = math.max(0, tonumber(newest[2]) + window - now)
    end
    return {1, limit - count, reset, -1, -1}
  end
  -- The request fits again once the entry `limit` places from the newest has left the window.
  local blocking = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  local retry = math.max(1, tonumber(blocking[2]) + window - now)
  return {0, 0, math.max(retry, tonumber(newest[2]) + window - now), retry, -1}
end
