-- report_account.lua: record how an upstream call on an account went and decide its health (S9).
-- KEYS[1] account      account hash
-- KEYS[2] failures     the account's recent transient failures (zset member -> ms)
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] account_id
-- ARGV[4] kind         transient | rate_limited | captcha | banned | quota | fast_hours
--                      | credentials_rejected (401/403: disabled with that reason until an
--                        operator sets a new key; no probe lifts it)
--                      | success (a call worked) | probe_passed (a health probe worked)
--                      (any other kind, e.g. incorrect, changes nothing)
-- ARGV[5] retry_after_ms  from a Retry-After (rate_limited; 0 = none)
-- ARGV[6] window_ms    rolling failure window
-- ARGV[7] threshold    transient failures within the window that start a cooldown
-- ARGV[8] base_ms      first cooldown; each further one in a row doubles it
-- ARGV[9] max_ms       longest cooldown
-- ARGV[10] reason      recorded in the account event
-- Returns: {0, old_state, new_state, cooldown_until} ({0, '', '', 0} for an unknown account:
--          one removed while a task ran on it)
-- Errors: none

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
if acc.id == nil then return {0, '', '', 0} end
local STATE_FOR = {captcha = 'needs_captcha', banned = 'banned', quota = 'auto_disabled'}
-- Health only makes a state worse; the way back is the sweep (cooldown over) or a passing probe.
local RANK = {active = 0, cooling_down = 1, auto_disabled = 2, needs_captcha = 2, disabled = 3, banned = 4}
local cooling = acc.state == 'cooling_down' and num(acc.cooldown_until, 0) > now

local function move(state, until_ms)
  if acc.state == 'disabled' or (RANK[state] or 0) < (RANK[acc.state] or 0) then return acc.state, acc.state end
  return account_set_state(base, id, acc, state, until_ms, 'health', reason, now)
end

-- Growing backoff: base, 2 base, 4 base ... up to max while cooldowns follow each other (a new one
-- within max_ms of the last one's end; a success on an active account ends the streak).
local function backoff()
  local streak = 1
  if now - num(acc.cooldown_until, 0) <= max_ms then streak = num(acc.cooldown_streak, 0) + 1 end
  redis.call('HSET', account_key, 'cooldown_streak', streak)
  return math.min(base_ms * 2 ^ math.min(streak - 1, 40), max_ms)
end

-- Exhausted fast hours: the account keeps only relax (nothing, if it never served relax); the
-- modes it had are kept in modes_before_fast_hours for an operator's restore.
local function relax_only()
  local modes = ',' .. (acc.modes or '') .. ','
  if acc.state == 'disabled' or not (modes:find(',fast,', 1, true) or modes:find(',turbo,', 1, true)) then return end
  local kept = modes:find(',relax,', 1, true) and 'relax' or ''
  avail_drop(base, id, acc)
  redis.call('HSET', account_key, 'modes_before_fast_hours', acc.modes, 'modes', kept)
  acc.modes = kept
  avail_refresh(base, id, now, acc)
  local why = 'fast hours exhausted: relax only'
  redis.call('XADD', base .. ':account_events:' .. acc.owner, 'MAXLEN', '~', 1000, '*', 'ts', tostring(now),
    'account_id', id, 'old_state', acc.state, 'state', acc.state, 'reason', why, 'by', 'health')
  notify_owner(base, acc.owner, cjson.encode({type = 'account_modes', account_id = id, modes = kept,
    reason = why, ts = now}), now)
end

local old, new = acc.state, acc.state
if STATE_FOR[kind] then
  old, new = move(STATE_FOR[kind], 0)
elseif kind == 'credentials_rejected' then
  reason = 'credentials_rejected'  -- machine-readable: put_account lifts exactly this reason
  old, new = move('disabled', 0)
elseif kind == 'rate_limited' then
  old, new = move('cooling_down', now + (retry_after > 0 and retry_after or backoff()))
elseif kind == 'fast_hours' then
  relax_only()
elseif kind == 'success' then
  if acc.state == 'active' then redis.call('HDEL', account_key, 'cooldown_streak') end
elseif kind == 'probe_passed' then
  if acc.state == 'needs_captcha' or acc.state == 'auto_disabled' then  -- a cooldown still runs out
    local still = num(acc.cooldown_until, 0) > now and 'cooling_down' or 'active'
    old, new = account_set_state(base, id, acc, still, 0, 'health', reason, now)
  end
elseif kind == 'transient' and not cooling then  -- calls made before a cooldown do not extend it
  redis.call('ZADD', failures, now, now .. ':' .. redis.call('HINCRBY', account_key, 'failure_seq', 1))
  redis.call('ZREMRANGEBYSCORE', failures, '-inf', now - window)
  redis.call('PEXPIRE', failures, window)
  if redis.call('ZCARD', failures) >= threshold and (RANK[acc.state] or 9) <= 1 then
    redis.call('DEL', failures)
    old, new = move('cooling_down', now + backoff())
  end
end
return {0, old, new, num(redis.call('HGET', account_key, 'cooldown_until'), 0)}
