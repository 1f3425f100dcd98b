-- read_delivery.lua: what one webhook POST needs, in one round trip: the task, its owner (for the
-- task view) and whether its endpoint answered 410 Gone earlier.
-- KEYS[1] task         the task hash
-- KEYS[2] disabled     set of endpoints that answered 410 Gone
-- ARGV[1] base         Keys.base
-- Returns: {0, task fields (flat, empty when gone), user fields (flat), disabled 0|1}
-- Errors: none (read only)

--- @include "store/lua/lib/keys.lua"

local task = redis.call('HGETALL', KEYS[1])
local fields = redis.call('HMGET', KEYS[1], 'user', 'webhook_endpoint')
local user = {}
if fields[1] then user = redis.call('HGETALL', K.user(ARGV[1], fields[1])) end
local disabled = 0
if fields[2] and fields[2] ~= '' then disabled = redis.call('SISMEMBER', KEYS[2], fields[2]) end
return {0, task, user, disabled}
