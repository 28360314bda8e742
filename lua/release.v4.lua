-- release.v4: give the units of cancelled or expired orders back to their sale item, in one
-- atomic step for a batch of orders: the stock goes up, each buyer's units go down (a closed
-- order no longer counts against the per-user limit), and the release is recorded, so an order
-- is released at most once however often it is asked.
--
-- KEYS[1] stock    remaining units
-- KEYS[2] meta     hash: sale_uid, expire_at_ms, `restoring` while a rebuild runs, and
--                  `released_units`, the sum of `released` kept beside the stock so that one
--                  read of both is exact (reconciliation)
-- KEYS[3] buyers   hash user -> units reserved
-- KEYS[4] ledger   hash order_id -> reservation payload (JSON with user_id and quantity)
-- KEYS[5] outbox   (not touched)
-- KEYS[6] idem     (not touched: a retry of the first request still answers its first order)
-- KEYS[7] released hash order_id -> units given back
-- ARGV[1] sale uid
-- ARGV[2..] order ids (at least one, at most 1000)
--
-- Invariant kept: initial_stock == stock + sum(quantity in ledger) - sum(units in released).
--
-- Returns an array with one reply per order id:
--    1 RELEASED      {1, units}   units given back now
--    2 ALREADY       {2, units}   released before; nothing changed
--   -1 NOT_IN_LEDGER {-1}         no such reservation here (the state was rebuilt from MySQL
--                                 after the order closed, or expired with the sale): nothing to
--                                 give back
-- or, for the whole call, an array of {-2} NOT_WARMED (no state), {-7} FOREIGN_STATE (another
-- sale's state) or {-8} RECOVERING (a rebuild runs; ask again after it).
-- A call without order ids, or with more than 1000, is an error reply.

local n = #ARGV - 1
if n < 1 or n > 1000 or ARGV[1] == '' then
  return redis.error_reply('ERR release.v4 expects the sale uid and 1 to 1000 order ids')
end

local function all(code)
  local replies = {}
  for i = 1, n do
    replies[i] = {code}
  end
  return replies
end

local meta = redis.call('HMGET', KEYS[2], 'sale_uid', 'restoring', 'expire_at_ms')
if not meta[1] then
  return all(-2)
end
if meta[1] ~= ARGV[1] then
  return all(-7)
end
if meta[2] then
  return all(-8)
end

local ids = {}
for i = 1, n do
  ids[i] = ARGV[i + 1]
end
local entries = redis.call('HMGET', KEYS[4], unpack(ids))
local before = redis.call('HMGET', KEYS[7], unpack(ids))
local replies = {}
local freed = 0
local released = {}
local taken = {}  -- user -> units to take off
for i = 1, n do
  if before[i] then
    replies[i] = {2, tonumber(before[i])}
  elseif not entries[i] then
    replies[i] = {-1}
  elseif taken[ids[i]] then
    replies[i] = {2, taken[ids[i]].units}  -- the same id twice in this call
  else
    local entry = cjson.decode(entries[i])
    local units = tonumber(entry.quantity)
    local user = entry.user_id
    freed = freed + units
    released[#released + 1] = ids[i]
    released[#released + 1] = units
    taken[ids[i]] = {user = user, units = units}
    replies[i] = {1, units}
  end
end

if freed > 0 then
  redis.call('INCRBY', KEYS[1], freed)
  redis.call('HINCRBY', KEYS[2], 'released_units', freed)
  for _, t in pairs(taken) do
    if redis.call('HINCRBY', KEYS[3], t.user, -t.units) <= 0 then
      redis.call('HDEL', KEYS[3], t.user)
    end
  end
  redis.call('HSET', KEYS[7], unpack(released))
  if redis.call('PTTL', KEYS[7]) == -1 and meta[3] then
    redis.call('PEXPIREAT', KEYS[7], meta[3])
  end
end
return replies
