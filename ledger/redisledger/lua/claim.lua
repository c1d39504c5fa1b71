-- Claims a single-use payment. KEYS: payment. ARGV: until (unix ms).
-- Reply: {OK} for the first claim, {DUPLICATE} once the payment was claimed
-- or credited, {INVALID} if until has passed by Redis's clock.
if tonumber(ARGV[1]) <= now_ms() then
  return {INVALID}
end
if redis.call('SET', KEYS[1], 'c', 'NX', 'PXAT', ARGV[1]) then
  return {OK}
end
return {DUPLICATE}
