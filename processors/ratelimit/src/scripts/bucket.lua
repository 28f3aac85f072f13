-- Token bucket and leaky bucket (as a queue). Both keep one hash {l = level, t = last update}:
-- the level counts used capacity in units of 1/window of a request and drains at `limit` units
-- per microsecond, i.e. `limit` requests per window. An absent key is an empty level.
--
-- Token bucket: tokens = limit - level; a request takes one token at once when one is there.
-- Leaky bucket: the level is the queue ahead; a request joins the queue when a slot is free and
-- must wait `delay` (the time the queue ahead needs to drain) before it is processed.
local function bucket(key, limit, window, now, consume, queue)
  local state = redis.call('HMGET', key, 'l', 't')
  local level = tonumber(state[1]) or 0
  local t = tonumber(state[2]) or now
  if now > t then
    level = math.max(0, level - (now - t) * limit)
    t = now
  end
  local full = limit * window
  if level + window <= full then
    local delay = -1
    if queue then
      delay = math.ceil(level / limit) + (t - now)
    end
    if consume then
      level = level + window
      redis.call('HSET', key, 'l', fmt(level), 't', fmt(t))
      expire_after(key, level / limit + (t - now))
    end
    local remaining = math.floor((full - level) / window)
    return {1, remaining, math.ceil(level / limit) + (t - now), -1, delay}
  end
  local retry = math.ceil((level + window - full) / limit) + (t - now)
  return {0, 0, math.ceil(level / limit) + (t - now), retry, -1}
end

local function token_bucket(key, limit, window, now, consume)
  return bucket(key, limit, window, now, consume, false)
end

local function leaky_bucket(key, limit, window, now, consume)
  return bucket(key, limit, window, now, consume, true)
end
