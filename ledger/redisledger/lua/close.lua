-- Closes an open session and returns its refund, once. KEYS: account,
-- holds, idle. ARGV: session id. Reply: {OK, refund}, {NOT_FOUND},
-- {CLOSED}.
local now = now_ms()
local refused, a, refund = spendable(KEYS[1], KEYS[2], now)
if refused then
  return refused
end
if a[1] ~= 's' then
  return {NOT_FOUND} -- a prepaid account is no session
end
local status = 'pending'
if refund <= 0 then
  refund, status = 0, 'skipped'
end
redis.call('HSET', KEYS[1], 'st', 'closed', 'cl', int(now), 'r', int(refund), 'rs', status)
redis.call('ZREM', KEYS[3], ARGV[1])
return {OK, refund}
