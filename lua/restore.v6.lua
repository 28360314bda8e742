-- restore.v6: restore.v5 (write one chunk of an item's state rebuilt from MySQL, only under the
-- token prewarm's `restore_begin` stamped on meta) for the record ledger of v6 (see deduct.v6):
-- the chunk is whole fields of the ledger, each a buyer hash with its header (the units its
-- records hold) and all its records. The buyers' units follow from the records, so `ledger` is
-- the only target.
--
-- KEYS[1] stock   (not touched)
-- KEYS[2] meta    hash; `restoring` holds the rebuild's token, `expire_at_ms` the expiry;
--                 `entries` (records written) and `released_units` (released quantities) grow
--                 with the fields written for the first time, so a chunk sent twice counts once
-- KEYS[3] buyers  (not used from v5 on)
-- KEYS[4] ledger  hash buyer hash (4 bytes) -> "units\n" then records "order id (16 bytes)
--                 entry\n", the entry "quantity reserved_at key user", "-quantity ..." when
--                 released
-- KEYS[5..7]      (not touched)
-- ARGV[1] token   ARGV[2] target: "ledger"
-- ARGV[3..] field, value, field, value, ... (at least one pair)
--
-- Returns {code, fields}:
--    1 WRITTEN        {1, fields written}
--   -1 NOT_RESTORING  {-1, 0}  meta holds no rebuild with this token (nothing written)
--   -2 BAD_ARGUMENT   {-2, 0}  another target, no complete field/value pair, a field that is
--                              not 4 bytes, or a value that is not a header and whole records
--                              whose ids end in their field, the header the units they hold
--                              (nothing written)

if ARGV[2] ~= 'ledger' or #ARGV < 4 or (#ARGV - 2) % 2 ~= 0 or ARGV[1] == '' then
  return {-2, 0}
end
local meta = redis.call('HMGET', KEYS[2], 'restoring', 'expire_at_ms')
if meta[1] ~= ARGV[1] then
  return {-1, 0}
end

local sub, find, match = string.sub, string.find, string.match

-- The records of a value: their count and released units; nil when it is not a header and
-- whole records under `field` whose units the header states.
local function count(field, value)
  local header, body = match(value, '^(%d+)\n()')
  if not header then
    return nil
  end
  local records, released, held = 0, 0, 0
  local pos = body
  while pos <= #value do
    local stop = pos + 16 <= #value and find(value, '\n', pos + 16, true)
    if not stop or sub(value, pos + 12, pos + 15) ~= field then
      return nil
    end
    local sign, units = match(sub(value, pos + 16, stop - 1), '^(-?)(%d+) %w+ %S* .')
    if not units then
      return nil
    end
    records = records + 1
    if sign == '-' then
      released = released + tonumber(units)
    else
      held = held + tonumber(units)
    end
    pos = stop + 1
  end
  if held ~= tonumber(header) then
    return nil
  end
  return records, released
end

local fields = {}
for i = 3, #ARGV, 2 do
  if #ARGV[i] ~= 4 or not count(ARGV[i], ARGV[i + 1]) then
    return {-2, 0}
  end
  fields[#fields + 1] = ARGV[i]
end

local before = redis.call('HMGET', KEYS[4], unpack(fields))
local entries, released = 0, 0
for j = 1, #fields do
  if not before[j] then
    local records, units = count(fields[j], ARGV[3 + 2 * (j - 1) + 1])
    entries = entries + records
    released = released + units
  end
end

redis.call('HSET', KEYS[4], unpack(ARGV, 3))
redis.call('PEXPIREAT', KEYS[4], meta[2])
redis.call('HINCRBY', KEYS[2], 'entries', entries)
if released > 0 then
  redis.call('HINCRBY', KEYS[2], 'released_units', released)
end
return {1, (#ARGV - 2) / 2}
