local total = 0
for _, token in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  total = total + tonumber(redis.call('GET', ARGV[1] .. token) or '0')
end
return total
