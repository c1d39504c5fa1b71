-- Reads the available balance. KEYS: account, holds. Reply:
-- {OK, available} (0 for a closed session), {NOT_FOUND}.
local a = redis.call('HMGET', KEYS[1], 'k', 'c', 's', 'st')
if not a[1] then
  return {NOT_FOUND}
end
if a[4] == 'closed' then
  return {OK, 0}
end
return {OK, tonumber(a[2]) - tonumber(a[3]) - held(KEYS[2], now_ms(), false)}
