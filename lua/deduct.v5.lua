-- deduct.v5: deduct.v4 (a batch of one sale item's requests in one atomic step, each answered
-- as if sent alone in batch order, for state stamped with its sale's uid) over the compact
-- ledger of v5, which holds about 90 bytes per reservation where v4 held about 550.
--
-- Served as v5 and as v6. A v6 sale runs this file unchanged under item keys whose hash tag
-- carries the sale's uid (`{s<sale>.<uid>:i<item>}`, src/stores/redis/keys.rs), so two
-- databases sharing one Redis never meet; the script sees only KEYS.
--
-- What changed from v4:
--   * The ledger and the buyers' units share `meta.buckets` small hashes (`<ledger>:<n>`), so
--     that each stays listpack-encoded in Redis. An order id's bucket is the big-endian number
--     in its bytes 13..16 modulo the bucket count; a user's is h = (h * 31 + byte) mod 2^32
--     over the id's bytes, modulo the bucket count. The buy path writes its buyer's h into
--     bytes 13..16 of each order id, so a request reads and writes one bucket (any id works,
--     at the cost of a second bucket).
--   * In a bucket, a field of 16 bytes is an order id; any other is a buyer, whose field is
--     the user id, with a trailing NUL when the id is 16 bytes long.
--   * Order ids are the 16 bytes of the UUID, not its text.
--   * A ledger entry is "quantity reserved_at idempotency_key user": the reservation time in
--     Unix ms written in base 36 by the caller, the key empty when none was sent. The Kafka
--     payload is rebuilt from it and the item's meta.
--   * There is no idempotency hash: a request with a key carries an order id derived from
--     (sale uid, item, user, key), so a retry finds its first order in the ledger under the same
--     id and is answered REPLAYED with that order's units.
--   * meta `entries` counts the ledger's entries.
--
-- KEYS[1] stock   remaining units
-- KEYS[2] meta    hash written by prewarm.v5: starts_at_ms, ends_at_ms, expire_at_ms,
--                 per_user_limit, sale_uid, buckets, entries, and `restoring` while a rebuild
--                 runs
-- KEYS[3] buyers  (not used from v5 on: buyers live in the ledger's buckets)
-- KEYS[4] ledger  prefix of the buckets: hash order id (16 bytes) -> entry (above), and
--                 buyer field -> units reserved
-- KEYS[5] outbox  zset order id (16 bytes) scored by reserve time (ms); entries leave it on
--                 Kafka's ack
-- KEYS[6] idem    (not used from v5 on)
-- KEYS[7] released (not touched)
-- ARGV[1] sale uid
-- ARGV[2] n, the number of requests (1 to 1000)
-- then five values per request i (at 3 + 5(i-1) .. 7 + 5(i-1)): user id, quantity (>= 1),
-- order id (16 bytes), reserved_at (Unix ms in base 36), idempotency key or '' for none
--
-- Invariant kept: initial_stock == stock + sum(quantity in ledger) - released_units.
--
-- Returns an array of n replies; reply i is {code, ...} for request i:
--    1 RESERVED        {1, remaining}                also for an order id without a key that is
--                                                    already in the ledger (a resent batch)
--    2 REPLAYED        {2, order id (16 bytes), units it reserved}  a request with a key whose
--                      order is in the ledger (also earlier in this batch); answered even after
--                      the window closed
--   -1 NOT_WARMED      {-1}                        the item has no state in Redis
--   -2 NOT_STARTED     {-2, starts_at_ms}
--   -3 ENDED           {-3, ends_at_ms}
--   -4 LIMIT_EXCEEDED  {-4, units already reserved, per_user_limit}
--   -5 SOLD_OUT        {-5, remaining}             remaining < quantity (0 when sold out)
--   -6 BAD_ARGUMENT    {-6}                        also an order id that is not 16 bytes, or a
--                                                  reservation time that is not a number
--   -7 FOREIGN_STATE   {-7}                        the item's meta belongs to another sale
--   -8 RECOVERING      {-8}                        the item is being rebuilt from MySQL
-- An argument count that does not match n is an error reply and nothing is written (a bug in
-- the caller, not a business outcome).

local uid = ARGV[1]
local n = tonumber(ARGV[2])
if not n or n < 1 or n > 1000 or n % 1 ~= 0 or #ARGV ~= 2 + 5 * n or uid == '' then
  return redis.error_reply('ERR deduct.v5 expects the sale uid, n, and 5 arguments per request')
end

local function all(reply)
  local replies = {}
  for i = 1, n do
    replies[i] = reply
  end
  return replies
end

local meta = redis.call('HMGET', KEYS[2], 'starts_at_ms', 'ends_at_ms', 'per_user_limit',
  'expire_at_ms', 'sale_uid', 'restoring', 'buckets')
if meta[5] and meta[5] ~= uid then
  return all({-7})
end
if meta[6] then
  return all({-8})
end
local buckets = tonumber(meta[7])
local warmed = meta[1] and meta[2] and meta[3] and meta[4] and meta[5] and buckets
local starts = tonumber(meta[1])
local ends = tonumber(meta[2])
local limit = tonumber(meta[3])
local expire_at = meta[4]

local function order_bucket(id)
  local a, b, c, d = string.byte(id, 13, 16)
  return KEYS[4] .. ':' .. ((((a * 256 + b) * 256 + c) * 256 + d) % buckets)
end

local user_buckets = {} -- user -> bucket key, each hashed once per batch
local function user_bucket(user)
  local key = user_buckets[user]
  if key then
    return key
  end
  local h = 0
  for i = 1, #user do
    h = (h * 31 + string.byte(user, i)) % 4294967296
  end
  key = KEYS[4] .. ':' .. (h % buckets)
  user_buckets[user] = key
  return key
end

-- A buyer's field: the id, with a trailing NUL when it is 16 bytes long (an order id's length).
local function user_field(user)
  if #user == 16 then
    return user .. '\0'
  end
  return user
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Read once; the batch runs atomically, so the local copies stay exact.
local remaining = nil
local bought = {}      -- user -> units held before and during this batch
local entries = {}     -- order id -> ledger entry, already there or written by this batch
local order_buckets = {} -- request i -> its order's bucket key
if warmed then
  remaining = tonumber(redis.call('GET', KEYS[1]))
  for i = 1, n do
    local b = 2 + 5 * (i - 1)
    local user = ARGV[b + 1]
    local id = ARGV[b + 3]
    if user ~= '' and #id == 16 then
      local ub, ob = user_bucket(user), order_bucket(id)
      order_buckets[i] = ob
      if ub == ob and bought[user] == nil and entries[id] == nil then
        -- The buy path's ids live in their buyer's bucket: one read for both.
        local got = redis.call('HMGET', ub, user_field(user), id)
        bought[user] = tonumber(got[1] or '0') or 0
        entries[id] = got[2]
      else
        if bought[user] == nil then
          bought[user] = tonumber(redis.call('HGET', ub, user_field(user)) or '0') or 0
        end
        if entries[id] == nil then
          entries[id] = redis.call('HGET', ob, id)
        end
      end
    end
  end
end

local changed = {}     -- user -> true once their units changed in this batch
local writes = {}      -- bucket key -> flat field/value list for one HSET
local outbox = {}      -- flat score/order id list for one ZADD
local taken = 0
local added = 0
local replies = {}

for i = 1, n do
  local b = 2 + 5 * (i - 1)
  local user = ARGV[b + 1]
  local qty = tonumber(ARGV[b + 2])
  local order_id = ARGV[b + 3]
  local at = ARGV[b + 4]
  local key = ARGV[b + 5]
  local reply = nil
  if not qty or qty < 1 or qty % 1 ~= 0 or user == '' or #order_id ~= 16
      or not string.match(at, '^%w+$') then
    reply = {-6}
  elseif not warmed then
    reply = {-1}
  elseif entries[order_id] then
    if key ~= '' then
      reply = {2, order_id, tonumber(string.match(entries[order_id], '^-?(%d+) '))}
    else
      reply = {1, remaining or 0}
    end
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
      added = added + 1
      bought[user] = had + qty
      changed[user] = true
      local entry = qty .. ' ' .. at .. ' ' .. key .. ' ' .. user
      entries[order_id] = entry
      local bucket = order_buckets[i]
      local list = writes[bucket]
      if not list then
        list = {}
        writes[bucket] = list
      end
      list[#list + 1] = order_id
      list[#list + 1] = entry
      outbox[#outbox + 1] = now
      outbox[#outbox + 1] = order_id
      reply = {1, remaining}
    end
  end
  replies[i] = reply
end

-- Every key expires with the sale: a key this batch created has no expiry yet.
local function expire_new(key)
  if redis.call('PTTL', key) == -1 then
    redis.call('PEXPIREAT', key, expire_at)
  end
end

if taken > 0 then
  redis.call('DECRBY', KEYS[1], taken)
  redis.call('HINCRBY', KEYS[2], 'entries', added)
  for user in pairs(changed) do
    local bucket = user_bucket(user)
    local list = writes[bucket]
    if not list then
      list = {}
      writes[bucket] = list
    end
    list[#list + 1] = user_field(user)
    list[#list + 1] = bought[user]
  end
  for bucket, list in pairs(writes) do
    redis.call('HSET', bucket, unpack(list))
    expire_new(bucket)
  end
  redis.call('ZADD', KEYS[5], unpack(outbox))
  expire_new(KEYS[5])
end
return replies
