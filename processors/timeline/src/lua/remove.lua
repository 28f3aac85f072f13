-- Take tweet ids out of home timelines and cancel any rebuild in progress, whose store read
-- may predate the removal and would put the ids back.
-- KEYS: pairs of (home timeline, its rebuild marker); ARGV: tweet ids.
for k = 1, #KEYS, 2 do
  if #ARGV > 0 then
    redis.call('ZREM', KEYS[k], unpack(ARGV))
  end
  redis.call('DEL', KEYS[k + 1])
end
return 1
