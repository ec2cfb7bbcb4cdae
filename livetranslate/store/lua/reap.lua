-- KEYS: lease, live, meta, events. ARGV: name, ended_at, end event JSON builder input.
-- A live session whose lease ran out: its `end`, once (whichever replica gets here first).
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
local why = redis.call('HGET', KEYS[3], 'handover')
local event = cjson.decode(ARGV[3])
if why then
  event['error'] = ARGV[4] .. why
end
event['end_s'] = tonumber(redis.call('HGET', KEYS[3], 'last_end_s') or '0')
redis.call('XADD', KEYS[4], '*', 'u', ARGV[5], 'e', cjson.encode(event))
redis.call('HINCRBY', KEYS[3], 'c:end', 1)
redis.call('HSET', KEYS[3], 'state', 'ended', 'ended_at', ARGV[2])
redis.call('HDEL', KEYS[3], 'handover')
return 1
