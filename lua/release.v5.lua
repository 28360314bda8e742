-- release.v5: release.v4 (give the units of cancelled or expired orders back to their sale
-- item, in one atomic step for a batch of orders, each order at most once) over the compact
-- ledger of v5 (see deduct.v5): order ids are 16 bytes, the ledger and buyers share buckets, and
-- a released order is marked in its own ledger entry (its quantity gets a leading '-') instead
-- of in a `released` hash.
--
-- Served as v5 and as v6. A v6 sale runs this file unchanged under item keys whose hash tag
-- carries the sale's uid (`{s<sale>.<uid>:i<item>}`, src/stores/redis/keys.rs), so two
-- databases sharing one Redis never meet; the script sees only KEYS.
--
-- KEYS[1] stock    remaining units
-- KEYS[2] meta     hash: sale_uid, expire_at_ms, buckets, `restoring` while a rebuild runs, and
--                  `released_units`, the sum of released quantities, kept beside the stock so
--                  that one read of both is exact (reconciliation)
-- KEYS[3] buyers   (not used from v5 on)
-- KEYS[4] ledger   prefix of the buckets: hash order id -> "quantity reserved_at key user"
--                  (see deduct.v5), "-quantity ..." once released; buyer field -> units
-- KEYS[5] outbox   (not touched)
-- KEYS[6] idem     (not used from v5 on)
-- KEYS[7] released (not used from v5 on)
-- ARGV[1] sale uid
-- ARGV[2..] order ids, 16 bytes each (at least one, at most 1000)
--
-- Invariant kept: initial_stock == stock + sum(quantity in ledger) - released_units.
--
-- Returns an array with one reply per order id:
--    1 RELEASED      {1, units}   units given back now
--    2 ALREADY       {2, units}   released before; nothing changed
--   -1 NOT_IN_LEDGER {-1}         no such reservation here (also an id that is not 16 bytes)
-- or, for the whole call, an array of {-2} NOT_WARMED (no state), {-7} FOREIGN_STATE (another
-- sale's state) or {-8} RECOVERING (a rebuild runs; ask again after it).
-- A call without order ids, or with more than 1000, is an error reply.

local n = #ARGV - 1
if n < 1 or n > 1000 or ARGV[1] == '' then
  return redis.error_reply('ERR release.v5 expects the sale uid and 1 to 1000 order ids')
end

local function all(code)
  local replies = {}
  for i = 1, n do
    replies[i] = {code}
  end
  return replies
end

local meta = redis.call('HMGET', KEYS[2], 'sale_uid', 'restoring', 'buckets')
local buckets = tonumber(meta[3])
if not meta[1] or not buckets then
  return all(-2)
end
if meta[1] ~= ARGV[1] then
  return all(-7)
end
if meta[2] then
  return all(-8)
end

local function order_bucket(id)
  local a, b, c, d = string.byte(id, 13, 16)
  return KEYS[4] .. ':' .. ((((a * 256 + b) * 256 + c) * 256 + d) % buckets)
end

local function user_bucket(user)
  local h = 0
  for i = 1, #user do
    h = (h * 31 + string.byte(user, i)) % 4294967296
  end
  return KEYS[4] .. ':' .. (h % buckets)
end

-- A buyer's field: the id, with a trailing NUL when it is 16 bytes long (an order id's length).
local function user_field(user)
  if #user == 16 then
    return user .. '\0'
  end
  return user
end

local replies = {}
local freed = 0
local seen = {}  -- order id -> units, released in this call
for i = 1, n do
  local id = ARGV[i + 1]
  if #id ~= 16 then
    replies[i] = {-1}
  elseif seen[id] then
    replies[i] = {2, seen[id]}  -- the same id twice in this call
  else
    local bucket = order_bucket(id)
    local entry = redis.call('HGET', bucket, id)
    if not entry then
      replies[i] = {-1}
    else
      local sign, units, rest = string.match(entry, '^(-?)(%d+)( .*)$')
      units = tonumber(units)
      if sign == '-' then
        replies[i] = {2, units}
      else
        local user = string.match(rest, '^ %w+ %S* (.*)$')
        local held = user_bucket(user)
        local field = user_field(user)
        if redis.call('HINCRBY', held, field, -units) <= 0 then
          redis.call('HDEL', held, field)
        end
        redis.call('HSET', bucket, id, '-' .. entry)
        freed = freed + units
        seen[id] = units
        replies[i] = {1, units}
      end
    end
  end
end

if freed > 0 then
  redis.call('INCRBY', KEYS[1], freed)
  redis.call('HINCRBY', KEYS[2], 'released_units', freed)
end
return replies
