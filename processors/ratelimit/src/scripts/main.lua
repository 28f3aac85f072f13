local now = tonumber(ARGV[1])
if not now or now <= 0 then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end

local algorithms = {
  tb = token_bucket,
  lb = leaky_bucket,
  fw = fixed_window,
  sl = sliding_log,
  sw = sliding_window_counter,
}

local function decide(consume)
  local results = {}
  local all = true
  for i = 1, #KEYS do
    local a = 2 + (i - 1) * 3
    local algorithm = algorithms[ARGV[a]]
    if not algorithm then
      return nil, 'unknown algorithm ' .. tostring(ARGV[a])
    end
    local result = algorithm(KEYS[i], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), now, consume)
    results[i] = result
    if result[1] == 0 then
      all = false
    end
  end
  return all, results
end

-- One limit decides and counts in one pass (an algorithm writes only when it admits); several
-- limits first all decide, then all count, so that a refusal by one costs the others nothing.
local all, results = decide(#KEYS == 1)
if all == nil then
  return redis.error_reply(results)
end
if all and #KEYS > 1 then
  all, results = decide(true)
end

local reply = {all and 1 or 0, now}
for i = 1, #results do
  for j = 1, 5 do
    reply[#reply + 1] = results[i][j]
  end
end
return reply
