-- revoke_api_key.lua: revoke one API key by its digest.
-- KEYS[1] api_key        Keys.api_key(digest) -> user id
-- ARGV[1] base           Keys.base; K.user_api_keys(base, <user id that KEYS[1] holds>) is derived
-- ARGV[2] digest
-- Returns: {0, user_id}
-- Errors: {-1, 'api key'} when no key has this digest (nothing written)

--- @include "store/lua/lib/keys.lua"

local api_key = KEYS[1]
local base, digest = ARGV[1], ARGV[2]
local user_id = redis.call('GET', api_key)
if not user_id then return {-1, 'api key'} end
redis.call('DEL', api_key)
redis.call('SREM', K.user_api_keys(base, user_id), digest)
return {0, user_id}
