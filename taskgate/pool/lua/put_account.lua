-- put_account.lua: add or update an account and its place in the availability index (S8).
-- KEYS[1] account      account hash
-- KEYS[2] accounts     set of every account id
-- KEYS[3] secret       the account's credentials (never returned by any API)
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] account_id
-- ARGV[4] fields       JSON object of string fields (owner, provider, models, modes, capacity, ...)
-- ARGV[5] secret       credentials ("" keeps the stored ones); new credentials lift a
--                      'credentials_rejected' disable (S10) and notify the owner
-- Returns: {0, account_id, created (1) | updated (0)}
-- Errors: none

--- @include "store/lua/lib/common.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "pool/lua/lib/avail.lua"
--- @include "pool/lua/lib/state.lua"

local account_key, accounts, secret_key = KEYS[1], KEYS[2], KEYS[3]
local base, id = ARGV[1], ARGV[3]
local now = clock_ms(ARGV[2])

local old = hash_map(account_key)
local created = old.id == nil and 1 or 0
if created == 0 then
  avail_drop(base, id, old)  -- models, modes, owner or tier may change
  redis.call('SREM', base .. ':owner_accounts:' .. old.owner, id)
else
  redis.call('HSET', account_key, 'id', id, 'state', 'active', 'created_ms', now)
end
for name, value in pairs(cjson.decode(ARGV[4])) do redis.call('HSET', account_key, name, value) end
if ARGV[5] ~= '' then redis.call('SET', secret_key, ARGV[5]) end
redis.call('SADD', accounts, id)
redis.call('SADD', base .. ':owner_accounts:' .. redis.call('HGET', account_key, 'owner'), id)
local acc = hash_map(account_key)
if ARGV[5] ~= '' and acc.state == 'disabled' and acc.state_reason == 'credentials_rejected' then
  account_set_state(base, id, acc, 'active', 0, 'operator', 'credentials updated', now)
else
  avail_refresh(base, id, now, acc)
end
wake_scheduler(base)
return {0, id, created}
