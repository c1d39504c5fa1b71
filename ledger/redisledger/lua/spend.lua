-- Takes sats if the available balance covers them: draws them, or with a
-- hold timeout holds them. KEYS: account, holds, idle. ARGV: account id,
-- sats, hold timeout in ms (0: draw). Reply: {OK, remaining} for a draw,
-- {OK, remaining, hold id} for a hold, {INSUFFICIENT, available},
-- {NOT_FOUND}, {CLOSED}.
local now = now_ms()
local refused, a, available = spendable(KEYS[1], KEYS[2], now)
if refused then
  return refused
end
local sats, timeout = tonumber(ARGV[2]), tonumber(ARGV[3])
if available < sats then
  return {INSUFFICIENT, available}
end
touch(KEYS[1], KEYS[3], ARGV[1], a[1], now)
if timeout == 0 then
  redis.call('HINCRBY', KEYS[1], 's', ARGV[2])
  return {OK, available - sats}
end
local id = redis.call('HINCRBY', KEYS[1], 'hs', 1)
redis.call('HSET', KEYS[2], id, ARGV[2] .. ':' .. int(now + timeout))
return {OK, available - sats, id}
