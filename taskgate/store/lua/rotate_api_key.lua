-- rotate_api_key.lua: replace every API key of a user by one new key (no moment without a key).
-- KEYS[1] user           the user hash (must exist)
-- KEYS[2] user_api_keys  set of the user's key digests
-- ARGV[1] base           Keys.base; each key K.api_key(base, digest) is derived from a digest that
--                        KEYS[2] holds, or from ARGV[2] (store/lua/lib/keys.lua)
-- ARGV[2] digest         SHA-256 of the new API key
-- ARGV[3] user_id
-- Returns: {0, revoked}  how many old keys were revoked
-- Errors: {-1, 'user', user_id} when the user does not exist (nothing written)

--- @include "store/lua/lib/keys.lua"

local user, user_api_keys = KEYS[1], KEYS[2]
local base, digest, user_id = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', user) == 0 then return {-1, 'user', user_id} end
local old = redis.call('SMEMBERS', user_api_keys)
for _, d in ipairs(old) do redis.call('DEL', K.api_key(base, d)) end
redis.call('DEL', user_api_keys)
redis.call('SET', K.api_key(base, digest), user_id)
redis.call('SADD', user_api_keys, digest)
return {0, #old}
