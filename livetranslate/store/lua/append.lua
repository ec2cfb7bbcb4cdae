-- KEYS: events, meta, lease, index. ARGV: token, append id, event JSON, kind, next segment
-- ("" for none), end_s, lease ms, languages JSON ("" when unchanged).
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return redis.error_reply('LEASE lost')
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  local fields = last[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'u' and fields[i + 1] == ARGV[2] then return last[1][1] end
  end
end
local id = redis.call('XADD', KEYS[1], '*', 'u', ARGV[2], 'e', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'c:' .. ARGV[4], 1)
if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], 'next_segment', ARGV[5]) end
if tonumber(ARGV[6]) > tonumber(redis.call('HGET', KEYS[2], 'last_end_s') or '0') then
  redis.call('HSET', KEYS[2], 'last_end_s', ARGV[6])
end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[2], 'languages', ARGV[8]) end
redis.call('PEXPIRE', KEYS[3], ARGV[7])
return id
