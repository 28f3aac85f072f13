-- Sliding window counter: hash {w = current window start, c = its count, p = previous window's
-- count}. The estimate is p * (time left of the sliding window in the previous window) / window
-- + c; a request is admitted when the estimate including it stays within the limit. Arithmetic
-- is done in units of 1/window of a request so it stays exact.
local function sliding_window_counter(key, limit, window, now, consume)
  local start = window_start(now, window)
  local state = redis.call('HMGET', key, 'w', 'c', 'p')
  local w = tonumber(state[1])
  local c = tonumber(state[2]) or 0
  local p = tonumber(state[3]) or 0
  if w ~= start then
    if w == start - window then
      p = c
    else
      p = 0
    end
    c = 0
  end
  local elapsed = now - start
  local full = limit * window
  local used = c * window + p * (window - elapsed)
  if used + window <= full then
    if consume then
      c = c + 1
      used = used + window
      redis.call('HSET', key, 'w', fmt(start), 'c', c, 'p', p)
      expire_after(key, 2 * window - elapsed)
    end
    local reset = 0
    if c > 0 then
      reset = 2 * window - elapsed
    elseif p > 0 then
      reset = window - elapsed
    end
    return {1, math.floor((full - used) / window), reset, -1, -1}
  end
  local retry
  if c + 1 <= limit then
    -- Later in this window the previous window's weight shrinks enough (p > 0 here).
    retry = window - math.floor((limit - c - 1) * window / p) - elapsed
  else
    -- Next window: this window's count becomes the previous one and decays from there.
    retry = window - elapsed + window - math.floor((limit - 1) * window / c)
  end
  local reset = window - elapsed
  if c > 0 then
    reset = 2 * window - elapsed
  end
  return {0, 0, reset, math.max(1, retry), -1}
end
