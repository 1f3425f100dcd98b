-- report_account.lua: an upstream call on an account failed; decide its health (S9).
-- KEYS[1] account      account hash
-- KEYS[2] failures     the account's recent transient failures (zset member -> ms)
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] account_id
-- ARGV[4] kind         transient | rate_limited | captcha | banned | quota | fast_hours
-- ARGV[5] retry_after_ms  from a Retry-After (rate_limited; 0 = none)
-- ARGV[6] window_ms    rolling failure window
-- ARGV[7] threshold    transient failures within the window that start a cooldown
-- ARGV[8] base_ms      first cooldown; each further one in a row doubles it
-- ARGV[9] max_ms       longest cooldown
-- ARGV[10] reason      recorded in the account event
-- Returns: {0, old_state, new_state, cooldown_until}
-- Errors: {-1, account_id} unknown account

--- @include "store/lua/lib/common.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "pool/lua/lib/avail.lua"
--- @include "pool/lua/lib/state.lua"

local account_key, failures = KEYS[1], KEYS[2]
local base, id, kind, retry_after = ARGV[1], ARGV[3], ARGV[4], num(ARGV[5], 0)
local window, threshold, base_ms, max_ms = num(ARGV[6]), num(ARGV[7]), num(ARGV[8]), num(ARGV[9])
local reason = ARGV[10]
local now = clock_ms(ARGV[2])

local acc = hash_map(account_key)
if acc.id == nil then return {-1, id} end
local STATE_FOR = {captcha = 'needs_captcha', banned = 'banned', quota = 'auto_disabled'}

local function cooldown(duration)
  return account_set_state(base, id, acc, 'cooling_down', now + duration, 'health', reason, now)
end

local old, new = acc.state, acc.state
if STATE_FOR[kind] then
  old, new = account_set_state(base, id, acc, STATE_FOR[kind], 0, 'health', reason, now)
elseif kind == 'rate_limited' then
  old, new = cooldown(retry_after > 0 and retry_after or base_ms)
elseif kind == 'fast_hours' then
  -- exhausted fast hours: relax only (the original modes are kept for the operator)
  if acc.modes ~= 'relax' and acc.state ~= 'disabled' then
    avail_drop(base, id, acc)
    if acc.modes_before_fast_hours == nil then redis.call('HSET', account_key, 'modes_before_fast_hours', acc.modes) end
    redis.call('HSET', account_key, 'modes', 'relax')
    acc.modes = 'relax'
    avail_refresh(base, id, now, acc)
    local why = 'fast hours exhausted: relax only'
    redis.call('XADD', base .. ':account_events:' .. acc.owner, 'MAXLEN', '~', 1000, '*', 'ts', tostring(now),
      'account_id', id, 'old_state', acc.state, 'state', acc.state, 'reason', why, 'by', 'health')
    notify_owner(base, acc.owner, cjson.encode({type = 'account_modes', account_id = id, modes = 'relax',
      reason = why, ts = now}), now)
  end
else  -- transient: a rolling window; past the threshold a cooldown that doubles while failures go on
  redis.call('ZADD', failures, now, now .. ':' .. redis.call('HINCRBY', account_key, 'failure_seq', 1))
  redis.call('ZREMRANGEBYSCORE', failures, '-inf', now - window)
  redis.call('PEXPIRE', failures, window)
  if redis.call('ZCARD', failures) >= threshold then
    redis.call('DEL', failures)
    local streak = 1
    if now - num(acc.cooldown_until, 0) <= max_ms then streak = num(acc.cooldown_streak, 0) + 1 end
    redis.call('HSET', account_key, 'cooldown_streak', streak)
    old, new = cooldown(math.min(base_ms * 2 ^ (streak - 1), max_ms))
  end
end
return {0, old, new, num(redis.call('HGET', account_key, 'cooldown_until'), 0)}
