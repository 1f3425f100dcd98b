-- set_account_state.lua: change an account's state (S9) and notify its owner on a change.
-- KEYS[1] account      account hash
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] account_id
-- ARGV[4] state        active | cooling_down | needs_captcha | disabled | auto_disabled | banned
-- ARGV[5] until_ms     end of a cooldown (cooling_down only; a cooldown is never shortened)
-- ARGV[6] by           operator | health (health never overrides an operator's disable)
-- ARGV[7] reason       recorded in the notification
-- Returns: {0, old_state, new_state}
-- Errors: {-1, 'account', account_id} unknown account

--- @include "store/lua/lib/common.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "pool/lua/lib/avail.lua"
--- @include "pool/lua/lib/state.lua"

local account_key = KEYS[1]
local base, id, state, until_ms, by, reason = ARGV[1], ARGV[3], ARGV[4], num(ARGV[5], 0), ARGV[6], ARGV[7]
local now = clock_ms(ARGV[2])

local acc = hash_map(account_key)
if acc.id == nil then return {-1, 'account', id} end
local old, new = account_set_state(base, id, acc, state, until_ms, by, reason, now)
return {0, old, new}
