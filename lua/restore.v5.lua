-- restore.v5: restore.v4 (write one chunk of an item's state rebuilt from MySQL, only under the
-- token prewarm's `restore_begin` stamped on meta) for the compact ledger of v5 (see
-- deduct.v5): each field goes to its bucket, and there are two targets, `ledger` and `buyers`
-- (v5 has no idempotency hash, and a released order is marked in its ledger entry).
--
-- Served as v5 and as v6. A v6 sale runs this file unchanged under item keys whose hash tag
-- carries the sale's uid (`{s<sale>.<uid>:i<item>}`, src/stores/redis/keys.rs), so two
-- databases sharing one Redis never meet; the script sees only KEYS.
--
-- KEYS[1] stock   (not touched)
-- KEYS[2] meta    hash; `restoring` holds the rebuild's token, `expire_at_ms` the expiry,
--                 `buckets` the bucket count; `entries` (new ledger fields) and
--                 `released_units` (released quantities) grow with the entries written
-- KEYS[3] buyers  (not used from v5 on)
-- KEYS[4] ledger  prefix of the buckets: hash order id (16 bytes) -> "quantity reserved_at key
--                 user", "-quantity ..." when released; buyer field -> units (see deduct.v5)
-- KEYS[5..7]      (not touched)
-- ARGV[1] token   ARGV[2] target: "ledger" or "buyers"
-- ARGV[3..] field, value, field, value, ... (at least one pair)
--
-- Returns {code, fields}:
--    1 WRITTEN        {1, fields written}
--   -1 NOT_RESTORING  {-1, 0}  meta holds no rebuild with this token (nothing written)
--   -2 BAD_ARGUMENT   {-2, 0}  unknown target, no complete field/value pair, an order id that
--                              is not 16 bytes or an entry that does not parse (nothing written)

local target = ARGV[2]
if (target ~= 'ledger' and target ~= 'buyers') or #ARGV < 4 or (#ARGV - 2) % 2 ~= 0
    or ARGV[1] == '' then
  return {-2, 0}
end
local meta = redis.call('HMGET', KEYS[2], 'restoring', 'expire_at_ms', 'buckets')
local buckets = tonumber(meta[3])
if meta[1] ~= ARGV[1] or not buckets then
  return {-1, 0}
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

local lists = {}  -- bucket key -> flat field/value list
local released = 0
for i = 3, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  local bucket
  if target == 'ledger' then
    local sign, units = string.match(value, '^(-?)(%d+) %w+ %S* .')
    if #field ~= 16 or not units then
      return {-2, 0}
    end
    if sign == '-' then
      released = released + tonumber(units)
    end
    bucket = order_bucket(field)
  else
    bucket = user_bucket(field)
    field = user_field(field)
  end
  local list = lists[bucket]
  if not list then
    list = {}
    lists[bucket] = list
  end
  list[#list + 1] = field
  list[#list + 1] = value
end

local added = 0
for bucket, list in pairs(lists) do
  added = added + redis.call('HSET', bucket, unpack(list))
  redis.call('PEXPIREAT', bucket, meta[2])
end
if target == 'ledger' then
  redis.call('HINCRBY', KEYS[2], 'entries', added)
  if released > 0 then
    redis.call('HINCRBY', KEYS[2], 'released_units', released)
  end
end
return {1, (#ARGV - 2) / 2}
