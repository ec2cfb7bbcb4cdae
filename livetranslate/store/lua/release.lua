-- KEYS: lease, live, meta. ARGV: token, name, ended_at. The session's last stream ended.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], 'state', 'ended', 'ended_at', ARGV[3])
return 1
