-- move_take.v1: the first half of moving units between two holders of a sharded item's stock
-- (its central bucket and its shards, each under its own hash tag, so on a Redis Cluster each
-- may live on another master). In one atomic step on the giving holder: take up to `want`
-- units from its stock and record the move. move_give.v1 then adds the units to the receiving
-- holder, and the caller deletes the move from `pending`. A move taken and never given (its
-- caller died between the two) stays in `pending`, and anyone may give it again: the give is
-- idempotent by move id, so no unit is lost or made twice.
--
-- KEYS[1] stock    this holder's remaining units
-- KEYS[2] meta     this holder's meta (prewarm.v5): sale_uid, expire_at_ms, `restoring` while a
--                  rebuild runs; `moved_out` counts the units moved out
-- KEYS[3] out      hash move id -> "<to> <units>": every move out, kept until the keys expire
-- KEYS[4] pending  hash move id -> "<to> <units>": moves out not yet known to have arrived
-- ARGV[1] sale uid   ARGV[2] move id   ARGV[3] to: the receiving holder's name (no spaces)
-- ARGV[4] want (>= 1)   ARGV[5] least (1 .. want): take nothing when fewer are left
--
-- Invariant kept: stock + moved_out changes only by reservations and releases, so
-- `initial + moved_in - moved_out == stock + reserved - released` holds for every holder.
--
-- Returns:
--    1 TAKEN          {1, units taken, remaining}   also for a move id already taken: its
--                                                   units, nothing taken again
--   -1 NOT_WARMED     {-1}            the holder has no state
--   -5 SHORT          {-5, remaining} fewer than `least` units left (nothing written)
--   -6 BAD_ARGUMENT   {-6}            a number did not parse, an empty id or holder
--   -7 FOREIGN_STATE  {-7}            the holder's meta belongs to another sale
--   -8 RECOVERING     {-8}            the holder is being rebuilt from MySQL

local uid, id, to = ARGV[1], ARGV[2], ARGV[3]
local want, least = tonumber(ARGV[4]), tonumber(ARGV[5])
if #ARGV ~= 5 or uid == '' or id == '' or to == '' or string.find(to, ' ', 1, true)
    or not want or not least or want % 1 ~= 0 or least % 1 ~= 0 or least < 1 or want < least then
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
local done = redis.call('HGET', KEYS[3], id)
if done then
  return {1, tonumber(string.match(done, ' (%d+)$')), remaining}
end
if remaining < least then
  return {-5, remaining}
end
local units = math.min(want, remaining)
local record = to .. ' ' .. units
redis.call('DECRBY', KEYS[1], units)
redis.call('HINCRBY', KEYS[2], 'moved_out', units)
for _, key in ipairs({KEYS[3], KEYS[4]}) do
  redis.call('HSET', key, id, record)
  if redis.call('PTTL', key) == -1 then
    redis.call('PEXPIREAT', key, meta[3])
  end
end
return {1, units, remaining - units}
