-- KEYS: lease, meta. ARGV: token, reason, handover ms.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], 'handover:' .. ARGV[2], 'PX', ARGV[3])
redis.call('HSET', KEYS[2], 'handover', ARGV[2])
return 1
