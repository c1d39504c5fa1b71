-- Lists open sessions idle for at least ARGV[1] ms by Redis's clock, least
-- recently active first, at most ARGV[2]. KEYS: idle. Reply: session ids.
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', int(now_ms() - tonumber(ARGV[1])), 'LIMIT', '0', ARGV[2])
