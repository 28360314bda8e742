-- queue_state.v1: the usher's read of a waiting room, making the pre-queue draw at the start.
--
-- KEYS[1] the room's counters (hash: pre, seq, drawn, pre_total, seed)
-- KEYS[2] the room's finished buyers (sorted set: user digest scored by position)
-- ARGV[1] '1' when the sale has started (the draw is made now if no join made it)
-- ARGV[2] a random seed for that draw
-- ARGV[3] the first position whose admission has not lapsed (finished buyers below it are
--         no longer counted)
-- ARGV[4] when the room's keys expire, Unix milliseconds
--
-- Returns {pre, seq, drawn (0 or 1), pre_total (-1 before the draw), seed ('' before the
-- draw), finished buyers at positions >= ARGV[3]}.
local pre = tonumber(redis.call('HGET', KEYS[1], 'pre') or '0')
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if ARGV[1] == '1' and not redis.call('HGET', KEYS[1], 'drawn') then
  redis.call('HSET', KEYS[1], 'drawn', 1, 'pre_total', pre, 'seed', ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], ARGV[4])
end
local drawn = redis.call('HGET', KEYS[1], 'drawn') and 1 or 0
local total = tonumber(redis.call('HGET', KEYS[1], 'pre_total') or '-1')
local seed = redis.call('HGET', KEYS[1], 'seed') or ''
local finished = redis.call('ZCOUNT', KEYS[2], ARGV[3], '+inf')
return {pre, seq, drawn, total, seed, finished}
