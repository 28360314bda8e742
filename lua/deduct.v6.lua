-- deduct.v6: deduct.v5 (a batch of one sale item's requests in one atomic step, each answered
-- as if sent alone in batch order, for state stamped with its sale's uid) over the record
-- ledger of v6: one hash for the whole item, so that a batch costs the same few Redis calls
-- however many buyers it holds (v5 made about three calls per request, one bucket each).
--
-- What changed from v5:
--   * The ledger is one hash. Its field is a buyer's hash, the 4 bytes
--     h = (h * 31 + byte) mod 2^32 over the user id, big-endian; its value holds the records
--     of every order of the buyers with that hash (almost always one buyer).
--   * A value is a header, the units its records hold (the quantities not released) in
--     decimal and a newline, then the records. A record is the order id (16 bytes), its entry
--     "quantity reserved_at idempotency_key user" (as in v5; a leading '-' on the quantity once
--     released), and a newline. User ids and keys hold no newline, so a record ends at the
--     first newline after its id.
--   * The per-user limit reads the header: while the field's units plus the request stay
--     within the limit, so do the buyer's. Only past it are the buyer's own records summed
--     (another buyer with the same hash may hold some), so a buy costs the same however many
--     orders its buyer has.
--   * An order already in the ledger is found by its 16 bytes at the start of a record (after
--     a newline).
--   * An order id's bytes 13..16 must be its buyer's hash (the buy path writes them so, see
--     stock::records); an id that says otherwise is BAD_ARGUMENT, so every order of a buyer is
--     under one field and the per-user limit is exact.
--   * prewarm.v6 creates the ledger with the empty field, so it has its expiry from the start;
--     should it be missing, the batch writes the field and the expiry again.
--
-- KEYS[1] stock   remaining units
-- KEYS[2] meta    hash written by prewarm.v6: starts_at_ms, ends_at_ms, expire_at_ms,
--                 per_user_limit, sale_uid, entries, and `restoring` while a rebuild runs
-- KEYS[3] buyers  (not used from v5 on)
-- KEYS[4] ledger  hash buyer hash (4 bytes) -> header and records (above); the empty field
--                 marks the hash
-- KEYS[5] outbox  zset order id (16 bytes) scored by reserve time (ms); entries leave it on
--                 Kafka's ack
-- KEYS[6] idem    (not used from v5 on)
-- KEYS[7] released (not used from v5 on)
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
--   -6 BAD_ARGUMENT    {-6}                        also an order id that is not 16 bytes or
--                                                  lacks its buyer's hash, a reservation time
--                                                  that is not a number, a user id with a
--                                                  newline, a key with a space or newline, a
--                                                  request whose field does not read as a
--                                                  header and records
--   -7 FOREIGN_STATE   {-7}                        the item's meta belongs to another sale
--   -8 RECOVERING      {-8}                        the item is being rebuilt from MySQL
-- An argument count that does not match n is an error reply and nothing is written (a bug in
-- the caller, not a business outcome).

local uid = ARGV[1]
local n = tonumber(ARGV[2])
if not n or n < 1 or n > 1000 or n % 1 ~= 0 or #ARGV ~= 2 + 5 * n or uid == '' then
  return redis.error_reply('ERR deduct.v6 expects the sale uid, n, and 5 arguments per request')
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
local byte, sub, find, match = string.byte, string.sub, string.find, string.match

-- The field of a request: its order id's last 4 bytes, when they are its buyer's hash.
local function field_of(user, id)
  local a, b, c, d = byte(id, 13, 16)
  local h = 0
  for i = 1, #user do
    h = (h * 31 + byte(user, i)) % 4294967296
  end
  if h ~= ((a * 256 + b) * 256 + c) * 256 + d then
    return nil
  end
  return sub(id, 13, 16)
end

local held = {}     -- field -> units its records hold, as read and as this batch adds
local records = {}  -- field -> its records (a newline first), as read and as this batch adds

-- The entry of order `id` in field `f`, or nil: its 16 bytes right after a newline.
local function entry_of(f, id)
  local body = records[f]
  local at = find(body, id, 1, true)
  while at do
    if byte(body, at - 1) == 10 then
      local stop = find(body, '\n', at + 16, true)
      return sub(body, at + 16, stop - 1)
    end
    at = find(body, id, at + 1, true)
  end
  return nil
end

-- The units `user` holds in field `f`: the quantities of their records not released.
local function units_of(f, user)
  local body = records[f]
  local units = 0
  local pos = 2
  while pos + 16 <= #body do
    local stop = find(body, '\n', pos + 16, true)
    local qty, who = match(sub(body, pos + 16, stop - 1), '^(-?%d+) %w+ %S* (.+)$')
    qty = tonumber(qty)
    if who == user and qty and qty > 0 then
      units = units + qty
    end
    pos = stop + 1
  end
  return units
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_text = t[1] .. sub(string.format('%06d', t[2]), 1, 3)

-- One read of every field the batch touches, with the empty one that marks the hash.
local remaining = nil
local fields = {}   -- request i -> its field
local lost = false  -- the ledger hash has no marker (it was never warmed, or it was lost)
if warmed then
  remaining = tonumber(redis.call('GET', KEYS[1]))
  local wanted = {''}
  for i = 1, n do
    local b = 2 + 5 * (i - 1)
    local user, id = ARGV[b + 1], ARGV[b + 3]
    if user ~= '' and #id == 16 then
      local f = field_of(user, id)
      fields[i] = f
      if f and not records[f] then
        records[f] = '\n'
        held[f] = 0
        wanted[#wanted + 1] = f
      end
    end
  end
  local got = redis.call('HMGET', KEYS[4], unpack(wanted))
  lost = not got[1]
  for j = 2, #wanted do
    local value = got[j]
    if value then
      local units, body = match(value, '^(%d+)(\n.*)$')
      held[wanted[j]] = tonumber(units)
      records[wanted[j]] = body
    end
  end
end

local changed = {}  -- fields this batch extended, in order
local outbox = {}   -- flat score/order id list for one ZADD
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
  local f = fields[i]
  local reply
  local entry = f and held[f] and entry_of(f, order_id)
  if not qty or qty < 1 or qty % 1 ~= 0 or user == '' or #order_id ~= 16
      or not match(at, '^%w+$') or find(user, '\n', 1, true) or find(key, '[ \n]')
      or (warmed and not f) or (f and not held[f]) then
    reply = {-6}
  elseif not warmed then
    reply = {-1}
  elseif entry then
    if key ~= '' then
      reply = {2, order_id, tonumber(match(entry, '^-?(%d+) '))}
    else
      reply = {1, remaining or 0}
    end
  elseif now < starts then
    reply = {-2, starts}
  elseif now >= ends then
    reply = {-3, ends}
  else
    local had = held[f] + qty > limit and units_of(f, user)
    if had and had + qty > limit then
      reply = {-4, had, limit}
    elseif not remaining then
      reply = {-1}
    elseif remaining < qty then
      reply = {-5, remaining}
    else
      remaining = remaining - qty
      taken = taken + qty
      added = added + 1
      held[f] = held[f] + qty
      if not changed[f] then
        changed[f] = true
        changed[#changed + 1] = f
      end
      records[f] = records[f] .. order_id .. ARGV[b + 2] .. ' ' .. at .. ' ' .. key .. ' '
        .. user .. '\n'
      outbox[#outbox + 1] = now_text
      outbox[#outbox + 1] = order_id
      reply = {1, remaining}
    end
  end
  replies[i] = reply
end

if taken > 0 then
  redis.call('DECRBY', KEYS[1], taken)
  redis.call('HINCRBY', KEYS[2], 'entries', added)
  local writes = {}
  for _, f in ipairs(changed) do
    writes[#writes + 1] = f
    writes[#writes + 1] = held[f] .. records[f]
  end
  if lost then
    writes[#writes + 1] = ''
    writes[#writes + 1] = ''
  end
  redis.call('HSET', KEYS[4], unpack(writes))
  if lost then
    redis.call('PEXPIREAT', KEYS[4], meta[4])
  end
  redis.call('ZADD', KEYS[5], unpack(outbox))
  if redis.call('PTTL', KEYS[5]) == -1 then
    redis.call('PEXPIREAT', KEYS[5], meta[4])
  end
end
return replies
