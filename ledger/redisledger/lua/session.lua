-- Reads a session. KEYS: account, holds. Reply: {NOT_FOUND}, or {OK, then
-- as strings ('' when unset): credited, spent, status, return invoice,
-- opened, last activity, closed, refund, refund status, refund payment,
-- held}.
local a = redis.call('HMGET', KEYS[1], 'k', 'c', 's', 'st', 'inv', 'o', 'la', 'cl', 'r', 'rs', 'rh')
if a[1] ~= 's' then
  return {NOT_FOUND}
end
local reply = {OK}
for i = 2, #a do
  reply[i] = a[i] or ''
end
reply[#a + 1] = int(held(KEYS[2], now_ms(), false))
return reply
