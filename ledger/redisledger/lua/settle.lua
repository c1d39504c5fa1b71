-- Ends a hold, charging cost instead (in full, even below zero; on a
-- closed session at most the hold). KEYS: account, holds, idle. ARGV:
-- account id, hold id, cost. Reply: {OK, remaining}, {NOT_FOUND} (no such
-- account or hold).
local a = redis.call('HMGET', KEYS[1], 'k', 'c', 's', 'st')
if not a[1] then
  return {NOT_FOUND}
end
local hold = redis.call('HGET', KEYS[2], ARGV[2])
if not hold then
  return {NOT_FOUND}
end
redis.call('HDEL', KEYS[2], ARGV[2])
local cost = ARGV[3]
if a[4] == 'closed' then
  local sats = string.match(hold, '^(%d+):')
  if tonumber(cost) > tonumber(sats) then
    cost = sats
  end
  redis.call('HINCRBY', KEYS[1], 's', cost)
  return {OK, 0}
end
redis.call('HINCRBY', KEYS[1], 's', cost)
local now = now_ms()
touch(KEYS[1], KEYS[3], ARGV[1], a[1], now)
return {OK, tonumber(a[2]) - tonumber(a[3]) - tonumber(cost) - held(KEYS[2], now, true)}
