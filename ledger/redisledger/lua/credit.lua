-- Credits a payment to an account once. KEYS: account, holds, idle,
-- payment. ARGV: account id, sats, mode ('credit': an account, created if
-- need be; 'topup': an open session only; 'open': a new session), return
-- invoice (open). Reply: {OK}, {DUPLICATE} (credited to this account
-- before), {USED}, {NOT_FOUND}, {CLOSED}, {CORRUPT}.
local id, sats, mode = ARGV[1], ARGV[2], ARGV[3]
local used = redis.call('GET', KEYS[4])
if used then
  if used == 'a:' .. id then
    return {DUPLICATE}
  end
  return {USED}
end
local a = redis.call('HMGET', KEYS[1], 'k', 'st')
local kind, status = a[1], a[2]
if mode == 'open' and kind then
  return {CORRUPT} -- the id is the deposit's hash, which no payment used
elseif mode == 'topup' and kind ~= 's' then
  return {NOT_FOUND}
end
if status == 'closed' then
  return {CLOSED}
end
local now = now_ms()
redis.call('SET', KEYS[4], 'a:' .. id)
if mode == 'open' then
  redis.call('HSET', KEYS[1], 'k', 's', 'c', sats, 's', '0', 'st', 'open', 'inv', ARGV[4], 'o', int(now), 'la', int(now))
  redis.call('ZADD', KEYS[3], int(now), id)
  return {OK}
end
if not kind then
  kind = 'p'
  redis.call('HSET', KEYS[1], 'k', kind, 'c', '0', 's', '0')
end
redis.call('HINCRBY', KEYS[1], 'c', sats)
touch(KEYS[1], KEYS[3], id, kind, now)
return {OK}
