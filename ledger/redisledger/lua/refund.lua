-- Records the outcome of a closed session's refund while it is pending or
-- unknown. KEYS: account. ARGV: status, payment hash. Reply: {OK},
-- {NOT_FOUND}, {INVALID} (open, or an outcome already final).
local a = redis.call('HMGET', KEYS[1], 'k', 'st', 'rs')
if a[1] ~= 's' then
  return {NOT_FOUND}
end
if a[2] ~= 'closed' or (a[3] ~= 'pending' and a[3] ~= 'unknown') then
  return {INVALID}
end
redis.call('HSET', KEYS[1], 'rs', ARGV[1], 'rh', ARGV[2])
return {OK}
