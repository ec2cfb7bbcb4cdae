-- a client's quota (livetranslate.keys) across servers: each server counts its own streams (or
-- viewers) of the client in a key of its own, renewed with its leases, so that a dead server's
-- count runs out; a set lists the servers counting. KEYS[1]: that set; ARGV: the count keys'
-- prefix, this server's token, the most, the count key's time to live (ms)
local total = 0
for _, token in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local count = redis.call('GET', ARGV[1] .. token)
  if count then total = total + tonumber(count) else redis.call('SREM', KEYS[1], token) end
end
if total >= tonumber(ARGV[3]) then return 0 end
local mine = ARGV[1] .. ARGV[2]
redis.call('INCR', mine)
redis.call('PEXPIRE', mine, ARGV[4])
redis.call('SADD', KEYS[1], ARGV[2])
return 1
