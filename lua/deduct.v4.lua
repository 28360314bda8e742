-- deduct.v4: reserve units for a batch of requests for one sale item in one atomic step, each
-- request answered as if it were sent alone, in batch order. The item's Redis state carries its
-- sale's identity (meta's `sale_uid`, written by prewarm.v4) and can be rebuilt from MySQL after
-- data loss (restore.v4).
--
--   * ARGV[1] is the sale's uid (from MySQL). A meta of another sale (another database using the
--     same key names, a MySQL restored from backup with reused ids) answers FOREIGN_STATE to
--     every request and changes nothing, so two sales' state is never mixed.
--   * While prewarm.v4 rebuilds the item from MySQL (meta field `restoring`), every request is
--     answered RECOVERING and nothing changes.
--
-- KEYS[1] stock   remaining units
-- KEYS[2] meta    hash written by prewarm.v4: starts_at_ms, ends_at_ms, expire_at_ms,
--                 per_user_limit, sale_uid, and `restoring` while a rebuild runs
-- KEYS[3] buyers  hash user -> units reserved
-- KEYS[4] ledger  hash order_id -> reservation payload (the outbox record sent to Kafka)
-- KEYS[5] outbox  zset order_id scored by reserve time (ms); entries leave it on Kafka's ack
-- KEYS[6] idem    hash user \0 idempotency key -> "order_id units"
-- ARGV[1] sale uid
-- ARGV[2] n, the number of requests (1 to 1000)
-- then five values per request i (at 3 + 5(i-1) .. 7 + 5(i-1)): user id, quantity (>= 1),
-- order id, reservation payload, idempotency key or '' for none
--
-- Invariant kept: initial_stock == stock + sum(quantity in ledger).
--
-- Returns an array of n replies; reply i is {code, ...} for request i:
--    1 RESERVED        {1, remaining}                also for an order id already in the ledger
--    2 REPLAYED        {2, earlier order_id, units it reserved}  same user and idempotency key
--                      as a reservation before (also earlier in this batch); answered even
--                      after the window closed
--   -1 NOT_WARMED      {-1}                        the item has no state in Redis
--   -2 NOT_STARTED     {-2, starts_at_ms}
--   -3 ENDED           {-3, ends_at_ms}
--   -4 LIMIT_EXCEEDED  {-4, units already reserved, per_user_limit}
--   -5 SOLD_OUT        {-5, remaining}             remaining < quantity (0 when sold out)
--   -6 BAD_ARGUMENT    {-6}
--   -7 FOREIGN_STATE   {-7}                        the item's meta belongs to another sale
--   -8 RECOVERING      {-8}                        the item is being rebuilt from MySQL
-- An argument count that does not match n is an error reply and nothing is written (a bug in
-- the caller, not a business outcome).

local uid = ARGV[1]
local n = tonumber(ARGV[2])
if not n or n < 1 or n > 1000 or n % 1 ~= 0 or #ARGV ~= 2 + 5 * n or uid == '' then
  return redis.error_reply('ERR deduct.v4 expects the sale uid, n, and 5 arguments per request')
end

local function all(reply)
  local replies = {}
  for i = 1, n do
    replies[i] = reply
  end
  return replies
end

local meta = redis.call('HMGET', KEYS[2], 'starts_at_ms', 'ends_at_ms', 'per_user_limit',
  'expire_at_ms', 'sale_uid', 'restoring')
if meta[5] and meta[5] ~= uid then
  return all({-7})
end
if meta[6] then
  return all({-8})
end
local warmed = meta[1] and meta[2] and meta[3] and meta[4] and meta[5]
local starts = tonumber(meta[1])
local ends = tonumber(meta[2])
local limit = tonumber(meta[3])
local expire_at = meta[4]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Read once; the batch runs atomically, so the local copies stay exact.
local remaining = nil
local bought = {}      -- user -> units held before and during this batch
local known = {}       -- order id -> true when the ledger already holds it
if warmed then
  remaining = tonumber(redis.call('GET', KEYS[1]))
  local users, orders = {}, {}
  for i = 1, n do
    users[i] = ARGV[2 + 5 * (i - 1) + 1]
    orders[i] = ARGV[2 + 5 * (i - 1) + 3]
  end
  local held_before = redis.call('HMGET', KEYS[3], unpack(users))
  local in_ledger = redis.call('HMGET', KEYS[4], unpack(orders))
  for i = 1, n do
    bought[users[i]] = tonumber(held_before[i] or '0') or 0
    if in_ledger[i] then
      known[orders[i]] = true
    end
  end
end

local replays = {}     -- idempotency field -> "order_id units" written by this batch
local held = {}        -- flat user/units list for one HSET of the changed buyers
local changed = {}     -- user -> true once their units changed in this batch
local ledger = {}      -- flat order_id/payload list for one HSET
local outbox = {}      -- flat score/order_id list for one ZADD
local idem = {}        -- flat field/value list for one HSET
local taken = 0
local replies = {}

for i = 1, n do
  local b = 2 + 5 * (i - 1)
  local user = ARGV[b + 1]
  local qty = tonumber(ARGV[b + 2])
  local order_id = ARGV[b + 3]
  local key = ARGV[b + 5]
  local reply = nil
  if not qty or qty < 1 or qty % 1 ~= 0 or user == '' or order_id == '' then
    reply = {-6}
  elseif not warmed then
    reply = {-1}
  elseif known[order_id] then
    reply = {1, remaining or 0}
  else
    local idem_field = false
    if key ~= '' then
      idem_field = user .. '\0' .. key
      local earlier = replays[idem_field] or redis.call('HGET', KEYS[6], idem_field)
      if earlier then
        local id, units = string.match(earlier, '^(%S+) (%d+)$')
        reply = {2, id, tonumber(units)}
      end
    end
    if reply then
      -- a retry: answered above
    elseif now < starts then
      reply = {-2, starts}
    elseif now >= ends then
      reply = {-3, ends}
    else
      local had = bought[user]
      if had + qty > limit then
        reply = {-4, had, limit}
      elseif not remaining then
        reply = {-1}
      elseif remaining < qty then
        reply = {-5, remaining}
      else
        remaining = remaining - qty
        taken = taken + qty
        known[order_id] = true
        bought[user] = had + qty
        changed[user] = true
        ledger[#ledger + 1] = order_id
        ledger[#ledger + 1] = ARGV[b + 4]
        outbox[#outbox + 1] = now
        outbox[#outbox + 1] = order_id
        if idem_field then
          local answer = order_id .. ' ' .. qty
          replays[idem_field] = answer
          idem[#idem + 1] = idem_field
          idem[#idem + 1] = answer
        end
        reply = {1, remaining}
      end
    end
  end
  replies[i] = reply
end

if taken > 0 then
  redis.call('DECRBY', KEYS[1], taken)
  for user in pairs(changed) do
    held[#held + 1] = user
    held[#held + 1] = bought[user]
  end
  redis.call('HSET', KEYS[3], unpack(held))
  redis.call('HSET', KEYS[4], unpack(ledger))
  redis.call('ZADD', KEYS[5], unpack(outbox))
  if #idem > 0 then
    redis.call('HSET', KEYS[6], unpack(idem))
  end
  -- Every key expires with the sale: a key this batch created has no expiry yet.
  for k = 3, 6 do
    if redis.call('PTTL', KEYS[k]) == -1 then
      redis.call('PEXPIREAT', KEYS[k], expire_at)
    end
  end
end
return replies
