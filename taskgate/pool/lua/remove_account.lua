-- remove_account.lua: delete an account; tasks already running on it finish there.
-- KEYS[1] account      account hash
-- KEYS[2] accounts     set of every account id
-- KEYS[3] secret       the account's credentials
-- ARGV[1] base         Keys.base
-- ARGV[2] account_id
-- Returns: {0, 1 removed | 0 unknown}
-- Errors: none

--- @include "store/lua/lib/common.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "pool/lua/lib/avail.lua"

local account_key, accounts, secret_key = KEYS[1], KEYS[2], KEYS[3]
local base, id = ARGV[1], ARGV[2]
local acc = hash_map(account_key)
if acc.id == nil then return {0, 0} end
avail_drop(base, id, acc)
redis.call('SREM', accounts, id)
redis.call('SREM', base .. ':owner_accounts:' .. acc.owner, id)
redis.call('DEL', account_key, secret_key)
return {0, 1}
