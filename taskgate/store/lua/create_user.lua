-- create_user.lua: a customer, its index entry and its first API key appear together.
-- KEYS[1] user           the user hash (must not exist)
-- KEYS[2] users          set of every user id
-- KEYS[3] api_key        Keys.api_key(digest) -> user id
-- KEYS[4] user_api_keys  set of the user's key digests
-- ARGV[1] user_id
-- ARGV[2] digest         SHA-256 of the new API key
-- ARGV[3..] fields         field, value pairs of the user hash (plan figures from the catalogue, settings)
-- Returns: {0}
-- Errors: {-7, reason} when the user hash or the key digest already exists (nothing written)

local user, users, api_key, user_api_keys = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local user_id, digest = ARGV[1], ARGV[2]
if redis.call('EXISTS', user) == 1 or redis.call('EXISTS', api_key) == 1 then
  return {-7, 'user or api key exists'}
end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', user, unpack(fields))
redis.call('SADD', users, user_id)
redis.call('SET', api_key, user_id)
redis.call('SADD', user_api_keys, digest)
return {0}
