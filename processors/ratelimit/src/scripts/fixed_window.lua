-- Fixed window counter: hash {w = window start, c = count}. Windows are aligned to the epoch,
-- so every identity's windows share boundaries (and the boundary burst of up to 2x the limit).
local function fixed_window(key, limit, window, now, consume)
  local start = window_start(now, window)
  local state = redis.call('HMGET', key, 'w', 'c')
  local count = 0
  if tonumber(state[1]) == start then
    count = tonumber(state[2]) or 0
  end
  local reset = start + window - now
  if count < limit then
    if consume then
      count = count + 1
      redis.call('HSET', key, 'w', fmt(start), 'c', count)
      expire_after(key, reset)
    end
    return {1, limit - count, reset, -1, -1}
  end
  return {0, 0, reset, reset, -1}
end
