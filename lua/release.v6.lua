-- release.v6: release.v5 (give the units of cancelled or expired orders back to their sale
-- item, in one atomic step for a batch of orders, each order at most once) over the record
-- ledger of v6 (see deduct.v6): an order's record is under its buyer's field, the last 4 bytes
-- of its id; a released record gets a leading '-' on its quantity, and the field's header (the
-- units its records hold) goes down by its units. One read and one write of the ledger serve
-- the whole batch.
--
-- KEYS[1] stock    remaining units
-- KEYS[2] meta     hash: sale_uid, expire_at_ms, `restoring` while a rebuild runs, and
--                  `released_units`, the sum of released quantities, kept beside the stock so
--                  that one read of both is exact (reconciliation)
-- KEYS[3] buyers   (not used from v5 on)
-- KEYS[4] ledger   hash buyer hash (4 bytes) -> "units\n" then records "order id (16 bytes)
--                  entry\n", the entry "quantity reserved_at key user" ("-quantity ..." once
--                  released)
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
--   -1 NOT_IN_LEDGER {-1}         no such reservation here (also an id that is not 16 bytes,
--                                 or one in a field that does not parse)
-- or, for the whole call, an array of {-2} NOT_WARMED (no state), {-7} FOREIGN_STATE (another
-- sale's state) or {-8} RECOVERING (a rebuild runs; ask again after it).
-- A call without order ids, or with more than 1000, is an error reply.

local n = #ARGV - 1
if n < 1 or n > 1000 or ARGV[1] == '' then
  return redis.error_reply('ERR release.v6 expects the sale uid and 1 to 1000 order ids')
end

local function all(code)
  local replies = {}
  for i = 1, n do
    replies[i] = {code}
  end
  return replies
end

local meta = redis.call('HMGET', KEYS[2], 'sale_uid', 'restoring', 'script_version')
if not meta[1] or not meta[3] then
  return all(-2)
end
if meta[1] ~= ARGV[1] then
  return all(-7)
end
if meta[2] then
  return all(-8)
end

local sub, find = string.sub, string.find

-- One read of every field the batch names.
local wanted = {}
local seen_field = {}
for i = 2, n + 1 do
  local id = ARGV[i]
  if #id == 16 then
    local f = sub(id, 13, 16)
    if not seen_field[f] then
      seen_field[f] = true
      wanted[#wanted + 1] = f
    end
  end
end

-- The records of a field's value: a list of {id, entry}; nil when it does not parse.
local function parse(value)
  local units, body = string.match(value, '^(%d+)(\n.*)$')
  if not units then
    return nil
  end
  local list = {}
  local pos = 2
  while pos <= #body do
    local stop = pos + 16 <= #body and find(body, '\n', pos + 16, true)
    if not stop then
      return nil
    end
    list[#list + 1] = {sub(body, pos, pos + 15), sub(body, pos + 16, stop - 1)}
    pos = stop + 1
  end
  return list, tonumber(units)
end

-- field -> {records = list of {id, entry}, units = its header}; order id -> its record
local fields = {}
local by_id = {}
if #wanted > 0 then
  local got = redis.call('HMGET', KEYS[4], unpack(wanted))
  for j, f in ipairs(wanted) do
    local list, units = parse(got[j] or '')
    if list then
      fields[f] = {records = list, units = units}
      for _, record in ipairs(list) do
        by_id[record[1]] = record
      end
    end
  end
end

local replies = {}
local freed = 0
local changed = {}
for i = 1, n do
  local id = ARGV[i + 1]
  local record = #id == 16 and by_id[id]
  if not record then
    replies[i] = {-1}
  else
    local sign, units = string.match(record[2], '^(-?)(%d+) ')
    units = tonumber(units)
    if not units then
      replies[i] = {-1}
    elseif sign == '-' then
      replies[i] = {2, units}
    else
      record[2] = '-' .. record[2]
      freed = freed + units
      local f = sub(id, 13, 16)
      fields[f].units = fields[f].units - units
      if not changed[f] then
        changed[f] = true
        changed[#changed + 1] = f
      end
      replies[i] = {1, units}
    end
  end
end

if freed > 0 then
  local writes = {}
  for _, f in ipairs(changed) do
    local parts = {fields[f].units, '\n'}
    for _, record in ipairs(fields[f].records) do
      parts[#parts + 1] = record[1] .. record[2] .. '\n'
    end
    writes[#writes + 1] = f
    writes[#writes + 1] = table.concat(parts)
  end
  redis.call('HSET', KEYS[4], unpack(writes))
  redis.call('INCRBY', KEYS[1], freed)
  redis.call('HINCRBY', KEYS[2], 'released_units', freed)
end
return replies
