-- move_give.v1: the second half of a move between two holders of a sharded item's stock (see
-- move_take.v1): in one atomic step on the receiving holder, add the units taken and record
-- the move's id, so that giving the same move again adds nothing.
--
-- KEYS[1] stock   this holder's remaining units
-- KEYS[2] meta    this holder's meta (prewarm.v5): sale_uid, expire_at_ms, `restoring` while
--                 a rebuild runs; `moved_in` counts the units moved in
-- KEYS[3] in      hash move id -> "<from> <units>": every move in, kept until the keys expire
-- ARGV[1] sale uid   ARGV[2] move id   ARGV[3] from: the giving holder's name (no spaces)
-- ARGV[4] units (>= 1)
--
-- Returns:
--    1 GIVEN          {1, remaining}   the units were added
--    2 ALREADY_GIVEN  {2, remaining}   the move was given before; nothing added
--   -1 NOT_WARMED     {-1}             the holder has no state (the move stays pending)
--   -6 BAD_ARGUMENT   {-6}
--   -7 FOREIGN_STATE  {-7}
--   -8 RECOVERING     {-8}             the holder is being rebuilt (the move stays pending)

local uid, id, from = ARGV[1], ARGV[2], ARGV[3]
local units = tonumber(ARGV[4])
if #ARGV ~= 4 or uid == '' or id == '' or from == '' or string.find(from, ' ', 1, true)
    or not units or units < 1 or units % 1 ~= 0 then
  return {-6}
end
local meta = redis.call('HMGET', KEYS[2], 'sale_uid', 'restoring', 'expire_at_ms')
if meta[1] and meta[1] ~= uid then
  return {-7}
end
if meta[2] then
  return {-8}
end
local remaining = tonumber(redis.call('GET', KEYS[1]))
if not meta[1] or not meta[3] or not remaining then
  return {-1}
end
if redis.call('HEXISTS', KEYS[3], id) == 1 then
  return {2, remaining}
end
redis.call('INCRBY', KEYS[1], units)
redis.call('HINCRBY', KEYS[2], 'moved_in', units)
redis.call('HSET', KEYS[3], id, from .. ' ' .. units)
if redis.call('PTTL', KEYS[3]) == -1 then
  redis.call('PEXPIREAT', KEYS[3], meta[3])
end
return {1, remaining + units}
