-- sweep_accounts.lua: return accounts whose cooldown ended to service, and fail BYOA tasks that
-- waited past the maximum with no account of their owner's able to run them (S6, S9).
-- KEYS[1] cooldowns    zset account id -> cooldown end (ms)
-- KEYS[2] byoa_waiting zset task id -> when to look at it again minus byoa_max (ms); entries of
--                      tasks that run, ended or failed over are dropped or re-armed here, lazily
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] byoa_max_ms  most a BYOA task waits with no own account able to run it
-- ARGV[4] limit        most items handled per kind in this call
-- Returns: {0, accounts_returned, tasks_failed}
-- Errors: none

--- @include "store/lua/lib/common.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "pool/lua/lib/avail.lua"
--- @include "pool/lua/lib/state.lua"
--- @include "billing/lua/lib/wallet.lua"
--- @include "webhooks/lua/lib/outbox.lua"
--- @include "tasks/lua/lib/settle.lua"
--- @include "scheduler/lua/lib/select.lua"

local cooldowns, byoa_waiting = KEYS[1], KEYS[2]
local base, byoa_max, limit = ARGV[1], num(ARGV[3]), num(ARGV[4])
local now = clock_ms(ARGV[2])

local returned = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', cooldowns, '-inf', now, 'LIMIT', 0, limit)) do
  redis.call('ZREM', cooldowns, id)
  local acc = hash_map(base .. ':account:' .. id)
  if acc.state == 'cooling_down' and num(acc.cooldown_until, 0) <= now then
    account_set_state(base, id, acc, 'active', 0, 'health', 'cooldown ended', now)
    returned = returned + 1
  end
end

-- Can the task still be run without failing it: by its pinned account, an own account that is
-- healthy (busy or not), or (unpinned, failover allowed) the shared pool, where it waits as PPU does.
local function may_run(task_id, t)
  if (t.bot_id or '') ~= '' then
    local acc = hash_map(base .. ':account:' .. t.bot_id)
    return acc.id ~= nil and account_usable(base, t.bot_id, acc, now) and account_serves(acc, t)
  end
  if redis.call('HGET', base .. ':user:' .. t.user, 'failover') == '1' then return true end
  return own_account_usable(base, now, task_id, t)
end

local function fail_byoa(task_id, tkey, t)
  redis.call('LREM', base .. ':flow:' .. t.flow, 1, task_id)
  redis.call('SREM', base .. ':tasks_aside', task_id)
  redis.call('ZREM', base .. ':relax_waiting', task_id)
  local why = ' within ' .. math.floor(byoa_max / 1000) .. ' s (banned, disabled, cooling down or not serving ' ..
    t.model_group .. ' ' .. t.lane .. ')'
  local msg = 'none of your accounts could run this task' .. why .. ' and failover to the shared pool is off'
  if (t.bot_id or '') ~= '' then msg = 'your account ' .. t.bot_id .. ' could not run this task' .. why end
  settle_final(base, now, task_id, tkey, t, 'failed', '', cjson.encode({code = 503, message = msg,
    raw_message = 'no usable account'}))
end

-- Returns 1 when the task was failed. A waiting task's wait starts when it was (re)queued.
local function check_byoa(task_id)
  local tkey = base .. ':task:' .. task_id
  local t = hash_map(tkey)
  if t.id == nil or t.pool ~= 'byoa' or t.status == 'completed' or t.status == 'failed' then
    redis.call('ZREM', byoa_waiting, task_id)
    return 0
  end
  if t.status ~= 'pending' then  -- running: it may be queued again, so look again later
    redis.call('ZADD', byoa_waiting, now, task_id)
    return 0
  end
  local since = math.max(num(t.created_ms, 0), num(t.dispatched_ms, 0), num(t.requeued_ms, 0))
  if now - since < byoa_max then
    redis.call('ZADD', byoa_waiting, since, task_id)
    return 0
  end
  if may_run(task_id, t) then
    redis.call('ZADD', byoa_waiting, now, task_id)
    return 0
  end
  redis.call('ZREM', byoa_waiting, task_id)
  fail_byoa(task_id, tkey, t)
  return 1
end

local failed = 0
for _, task_id in ipairs(redis.call('ZRANGEBYSCORE', byoa_waiting, '-inf', now - byoa_max, 'LIMIT', 0, limit)) do
  failed = failed + check_byoa(task_id)
end
return {0, returned, failed}
