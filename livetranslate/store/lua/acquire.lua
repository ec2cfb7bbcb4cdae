-- KEYS: lease, live, meta. ARGV: token, lease ms, name, meta fields JSON.
-- Taken when free, held by this token already, or handed over; else its ms to live.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and string.sub(holder, 1, 9) ~= 'handover:' then
  return redis.call('PTTL', KEYS[1])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
local fields = cjson.decode(ARGV[4])
for k, v in pairs(fields) do redis.call('HSET', KEYS[3], k, v) end
redis.call('HDEL', KEYS[3], 'ended_at', 'handover')
return -3
