-- lock_renew.v1: extend a distributed lock's lifetime only if the caller still owns it.
--
-- KEYS[1] lock key
-- ARGV[1] owner token   ARGV[2] new time to live in milliseconds (>= 1)
--
-- Returns 1 when renewed, 0 when the caller no longer owns the lock (it must stop its work).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
