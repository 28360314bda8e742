-- lock_release.v1: release a distributed lock only if the caller still owns it.
--
-- KEYS[1] lock key
-- ARGV[1] owner token the caller set with SET NX PX
--
-- Returns 1 when the lock was held by the caller and is now deleted, 0 otherwise (expired, or
-- taken over by another owner, whose lock stays untouched).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
