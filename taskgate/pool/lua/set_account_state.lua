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
-- Errors: {-1, account_id} unknown account

--- @include "store/lua/lib/common.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "pool/lua/lib/avail.lua"

local account_key = KEYS[1]
local base, id, state, until_ms, by, reason = ARGV[1], ARGV[3], ARGV[4], num(ARGV[5], 0), ARGV[6], ARGV[7]
local now = clock_ms(ARGV[2])

local acc = hash_map(account_key)
if acc.id == nil then return {-1, id} end
local old = acc.state
if by == 'health' and old == 'disabled' then return {0, old, old} end
if state == 'cooling_down' then
  until_ms = math.max(until_ms, num(acc.cooldown_until, 0))
  redis.call('HSET', account_key, 'cooldown_until', until_ms)
end
redis.call('HSET', account_key, 'state', state, 'state_reason', reason, 'state_by', by, 'state_ms', now)
avail_refresh(base, id, now)
if old ~= state then
  redis.call('XADD', base .. ':account_events:' .. acc.owner, 'MAXLEN', '~', 1000, '*',
    'ts', tostring(now), 'account_id', id, 'old_state', old, 'state', state, 'reason', reason, 'by', by)
  if state == 'active' then wake_scheduler(base) end
end
return {0, old, state}
