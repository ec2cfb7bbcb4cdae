local mine = ARGV[1] .. ARGV[2]
if redis.call('DECR', mine) <= 0 then
  redis.call('DEL', mine)
  redis.call('SREM', KEYS[1], ARGV[2])
end
return 1
