-- Account state changes (S9). Needs common.lua, flows.lua, avail.lua.
--- @include "webhooks/lua/lib/notify.lua"

-- Move an account to `state` (cooling_down until `until_ms`, never shortened), refresh its place
-- in the index (waking flows that wait for it, or that must now choose again), record the
-- cooldown deadline for the sweep, and notify the owner on a change. Health never overrides an
-- operator's disable. Returns old, new state.
local function account_set_state(base, id, acc, state, until_ms, by, reason, now)
  local key = base .. ':account:' .. id
  local old = acc.state
  if by == 'health' and old == 'disabled' then return old, old end
  if state == 'cooling_down' then
    until_ms = math.max(until_ms, num(acc.cooldown_until, 0))
    redis.call('HSET', key, 'cooldown_until', until_ms)
    redis.call('ZADD', base .. ':cooldowns', until_ms, id)
    acc.cooldown_until = tostring(until_ms)
  end
  redis.call('HSET', key, 'state', state, 'state_reason', reason, 'state_by', by, 'state_ms', now)
  acc.state = state
  avail_refresh(base, id, now, acc)
  if old ~= state then
    redis.call('XADD', base .. ':account_events:' .. acc.owner, 'MAXLEN', '~', 1000, '*',
      'ts', tostring(now), 'account_id', id, 'old_state', old, 'state', state, 'reason', reason, 'by', by)
    notify_owner(base, acc.owner, cjson.encode({type = 'account_state', account_id = id, old_state = old,
      state = state, reason = reason, by = by, ts = now}), now)
    if state == 'active' then wake_scheduler(base) end
  end
  return old, state
end
