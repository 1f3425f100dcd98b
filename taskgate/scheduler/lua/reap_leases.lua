-- reap_leases.lua: return the slots of attempts whose lease expired, and retry or fail their tasks.
-- KEYS[1] leases       global lease index (task id -> deadline)
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] limit        most leases handled in this call
-- ARGV[4] max_attempts attempts after which a lost lease fails the task
-- Returns: {0, n, task_id_1, status_1, ...} (status: pending = retried, failed = given up)
-- Errors: none

--- @include "store/lua/lib/common.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "pool/lua/lib/avail.lua"
--- @include "scheduler/lua/lib/leases.lua"
--- @include "billing/lua/lib/wallet.lua"
--- @include "webhooks/lua/lib/outbox.lua"
--- @include "tasks/lua/lib/settle.lua"

local leases = KEYS[1]
local base, limit, max_attempts = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = clock_ms(ARGV[2])

local out = {0, 0}
for _, task_id in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)) do
  local task_key = base .. ':task:' .. task_id
  local t = hash_map(task_key)
  local status = 'gone'
  if t.status == 'processing' then
    release_slots(base, task_id, t, now)
    if num(t.attempt, 0) < max_attempts then
      -- an upstream job already submitted is resumed by its id on the same account (§8)
      if (t.upstream_id or '') ~= '' then redis.call('HSET', task_key, 'resume_account', t.account) end
      requeue_front(base, task_key, t)
      status = 'pending'
    else
      local msg = 'lease lost ' .. t.attempt .. ' times: no worker finished the task'
      settle_final(base, now, task_id, task_key, t, 'failed', '',
        cjson.encode({code = 500, message = msg, raw_message = 'lease expired'}))
      status = 'failed'
    end
  else
    redis.call('ZREM', leases, task_id)  -- a stray entry; the task already ended
  end
  out[#out + 1], out[#out + 2] = task_id, status
  out[2] = out[2] + 1
end
return out
