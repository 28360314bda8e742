-- queue_join.v1: put a buyer in a sale's waiting room once; joining again answers the same place.
--
-- KEYS[1] the buyer's bucket of the room (hash: user digest -> place)
-- KEYS[2] the room's counters (hash: pre, seq, drawn, pre_total, seed)
-- ARGV[1] the buyer's 8-byte digest
-- ARGV[2] 'pre' when the join came before the start, 'open' from the start on
-- ARGV[3] a random seed for the pre-queue draw (used only when this join makes the draw)
-- ARGV[4] seconds from the room's opening to this join (>= 0, < 2^25)
-- ARGV[5] when the room's keys expire, Unix milliseconds (the sale's end plus its grace)
--
-- A place is one integer: joined_secs * 2^27 + index * 2 + kind. Kind 1 is the pre-queue
-- (index in arrival order, its position drawn at random at the start); kind 0 is a join from
-- the start on (position = pre_total + index: arrival order). The first join from the start
-- on makes the draw when the usher has not yet: it closes the pre-queue (drawn = 1,
-- pre_total, seed), and every later join is kind 0, whatever its caller's clock said.
--
-- Returns {created (1 or 0), place, pre_total (-1 before the draw)}, or the error 'FULL'
-- when the room holds 2^26 joins of one kind.
local existing = redis.call('HGET', KEYS[1], ARGV[1])
local function pre_total()
  local t = redis.call('HGET', KEYS[2], 'pre_total')
  if t then return tonumber(t) end
  return -1
end
if existing then
  return {0, tonumber(existing), pre_total()}
end
local drawn = redis.call('HGET', KEYS[2], 'drawn')
local kind, field
if ARGV[2] == 'pre' and not drawn then
  kind, field = 1, 'pre'
else
  if not drawn then
    local pre = tonumber(redis.call('HGET', KEYS[2], 'pre') or '0')
    redis.call('HSET', KEYS[2], 'drawn', 1, 'pre_total', pre, 'seed', ARGV[3])
  end
  kind, field = 0, 'seq'
end
local index = redis.call('HINCRBY', KEYS[2], field, 1) - 1
if index >= 67108864 then
  redis.call('HINCRBY', KEYS[2], field, -1)
  return redis.error_reply('FULL')
end
local place = tonumber(ARGV[4]) * 134217728 + index * 2 + kind
redis.call('HSET', KEYS[1], ARGV[1], place)
if redis.call('HLEN', KEYS[1]) == 1 then
  redis.call('PEXPIREAT', KEYS[1], ARGV[5])
end
if redis.call('PTTL', KEYS[2]) == -1 then
  redis.call('PEXPIREAT', KEYS[2], ARGV[5])
end
return {1, place, pre_total()}
