-- KEYS: events, meta. ARGV: append id, event JSON, kind, language of a translation ("" for
-- none). An event no speaker's stream makes (a correction, a summary, a late viewer's
-- translation): no lease needed, the session may be live on another server or ended.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return redis.error_reply('NO SESSION')
end
local id = redis.call('XADD', KEYS[1], '*', 'u', ARGV[1], 'e', ARGV[2])
redis.call('HINCRBY', KEYS[2], 'c:' .. ARGV[3], 1)
if ARGV[4] ~= '' then
  local known = redis.call('HGET', KEYS[2], 'languages')
  local list = known and cjson.decode(known) or {}
  local found = false
  for _, code in ipairs(list) do
    if code == ARGV[4] then found = true end
  end
  if not found then
    table.insert(list, ARGV[4])
    redis.call('HSET', KEYS[2], 'languages', cjson.encode(list))
  end
end
return id
