-- Take tweet ids out of one home timeline and cancel any rebuild in progress, whose store read
-- may predate the removal and would put the ids back.
-- KEYS[1] home timeline, KEYS[2] its rebuild marker; ARGV tweet ids.
if #ARGV > 0 then
  redis.call('ZREM', KEYS[1], unpack(ARGV))
end
redis.call('DEL', KEYS[2])
return 1
