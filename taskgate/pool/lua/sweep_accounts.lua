-- sweep_accounts.lua: return accounts whose cooldown ended to service, and fail BYOA tasks that
-- waited past the maximum with no account of their owner's able to run them (S6, S9).
-- KEYS[1] cooldowns    zset account id -> cooldown end (ms)
-- KEYS[2] byoa_waiting zset task id -> creation time (ms)
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] byoa_max_ms  most a BYOA task waits for its owner's accounts
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

local failed = 0
for _, task_id in ipairs(redis.call('ZRANGEBYSCORE', byoa_waiting, '-inf', now - byoa_max, 'LIMIT', 0, limit)) do
  redis.call('ZREM', byoa_waiting, task_id)
  local tkey = base .. ':task:' .. task_id
  local t = hash_map(tkey)
  if t.status == 'pending' and t.pool == 'byoa' then
    redis.call('LREM', base .. ':flow:' .. t.flow, 1, task_id)
    local msg = 'none of your accounts could run this task within ' .. math.floor(byoa_max / 1000) ..
      ' s, and failover to the shared pool is off'
    settle_final(base, now, task_id, tkey, t, 'failed', '', cjson.encode({code = 503, message = msg,
      raw_message = 'no usable account'}))
    failed = failed + 1
  end
end
return {0, returned, failed}
