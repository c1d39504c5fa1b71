-- Draws sats if the available balance covers them. KEYS: account, holds,
-- idle. ARGV: account id, sats. Reply: {OK, remaining},
-- {INSUFFICIENT, available}, {NOT_FOUND}, {CLOSED}.
local a = redis.call('HMGET', KEYS[1], 'k', 'c', 's', 'st')
if not a[1] then
  return {NOT_FOUND}
end
if a[4] == 'closed' then
  return {CLOSED}
end
local now = now_ms()
local sats = tonumber(ARGV[2])
local available = tonumber(a[2]) - tonumber(a[3]) - held(KEYS[2], now, true)
if available < sats then
  return {INSUFFICIENT, available}
end
redis.call('HINCRBY', KEYS[1], 's', ARGV[2])
touch(KEYS[1], KEYS[3], ARGV[1], a[1], now)
return {OK, available - sats}
