-- Closes an open session and returns its refund, once. KEYS: account,
-- holds, idle. ARGV: session id. Reply: {OK, refund}, {NOT_FOUND},
-- {CLOSED}.
local a = redis.call('HMGET', KEYS[1], 'k', 'c', 's', 'st')
if a[1] ~= 's' then
  return {NOT_FOUND}
end
if a[4] == 'closed' then
  return {CLOSED}
end
local now = now_ms()
local refund = tonumber(a[2]) - tonumber(a[3]) - held(KEYS[2], now, true)
local status = 'pending'
if refund <= 0 then
  refund, status = 0, 'skipped'
end
redis.call('HSET', KEYS[1], 'st', 'closed', 'cl', int(now), 'r', int(refund), 'rs', status)
redis.call('ZREM', KEYS[3], ARGV[1])
return {OK, refund}
