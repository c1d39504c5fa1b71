-- Prepended to every other script of this directory (see scripts.go).
-- Keys of an account (KEYS[1]): a hash with k (kind: 'p' prepaid, 's'
-- session), c (credited), s (spent), hs (last hold id), and for sessions
-- st ('open' or 'closed'), inv (return invoice), o, la, cl (opened, last
-- activity, closed: unix ms), r (refund), rs (refund status), rh (refund
-- payment hash). Its holds (KEYS[2]): a hash of hold id to
-- '<sats>:<expires unix ms>'. The idle index (KEYS[3]): a sorted set of
-- open session ids scored by last activity. Amounts arrive as decimal
-- strings in ARGV and are written back as such, so no Lua number is ever
-- printed in exponent form.

-- Reply codes, mirrored by the constants in scripts.go.
local OK, DUPLICATE, USED, NOT_FOUND, CLOSED, INSUFFICIENT, INVALID, CORRUPT = 0, 1, 2, 3, 4, 5, 6, 7

-- now_ms is Redis's clock, so every instance agrees on it.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- int prints an integral number in decimal.
local function int(n)
  return string.format('%d', n)
end

-- held sums the unexpired holds of an account; with sweep it deletes the
-- expired ones.
local function held(holds, now, sweep)
  local sum = 0
  local all = redis.call('HGETALL', holds)
  for i = 1, #all, 2 do
    local sats, expires = string.match(all[i + 1], '^(%d+):(%d+)$')
    if tonumber(expires) > now then
      sum = sum + tonumber(sats)
    elseif sweep then
      redis.call('HDEL', holds, all[i])
    end
  end
  return sum
end

-- touch records activity on a session: its stamp and its place in the
-- idle index. kind is the account's k.
local function touch(account, idle, id, kind, now)
  if kind == 's' then
    redis.call('HSET', account, 'la', int(now))
    redis.call('ZADD', idle, int(now), id)
  end
end

-- spendable reads an account that draws may spend from. It returns the
-- reply refusing it ({NOT_FOUND} or {CLOSED}), or nil, its fields
-- (k, c, s, st) and its available balance, expired holds swept.
local function spendable(account, holds, now)
  local a = redis.call('HMGET', account, 'k', 'c', 's', 'st')
  if not a[1] then
    return {NOT_FOUND}
  end
  if a[4] == 'closed' then
    return {CLOSED}
  end
  return nil, a, tonumber(a[2]) - tonumber(a[3]) - held(holds, now, true)
end
