-- reap_leases.lua: return the slots of attempts whose lease expired, and retry or fail their tasks.
-- KEYS[1] leases       global lease index (task id -> deadline)
-- KEYS[2] arq_queue    arq's queue zset
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] limit        most leases handled in this call
-- ARGV[4] max_attempts attempts after which a lost lease fails the task (hand-backs do not count)
-- ARGV[5] lease_ms     new lease of an attempt whose job no worker has started yet
-- ARGV[6] job_prefix   arq job key prefix ("arq:job:")
-- ARGV[7] progress_prefix arq in-progress key prefix ("arq:in-progress:"), set when a worker starts a job
-- Returns: {0, n, task_id_1, status_1, ...} (status: pending = retried, failed = given up,
--          queued = its job still waits for a worker: the lease is extended, the attempt kept)
-- Errors: none

--- @include "store/lua/lib/common.lua"
--- @include "store/lua/lib/keys.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "pool/lua/lib/avail.lua"
--- @include "scheduler/lua/lib/leases.lua"
--- @include "billing/lua/lib/wallet.lua"
--- @include "webhooks/lua/lib/outbox.lua"
--- @include "tasks/lua/lib/settle.lua"

local leases, arq_queue = KEYS[1], KEYS[2]
local base, limit, max_attempts = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local lease_ms, job_prefix, progress_prefix = tonumber(ARGV[5]), ARGV[6], ARGV[7]
local now = clock_ms(ARGV[2])

-- The attempt's arq job is still in the queue and no worker has started it (arq sets the
-- in-progress key when it does; nothing was submitted upstream): busy workers, not a lost attempt.
local function unstarted(task_id, t)
  if (t.upstream_id or '') ~= '' then return false end
  local job_id = K.arq_job_id(base, task_id, t.attempt)
  return redis.call('ZSCORE', arq_queue, job_id) ~= false and redis.call('EXISTS', job_prefix .. job_id) == 1
    and redis.call('EXISTS', progress_prefix .. job_id) == 0
end

local out = {0, 0}
for _, task_id in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)) do
  local task_key = base .. ':task:' .. task_id
  local t = hash_map(task_key)
  local status = 'gone'
  if t.status == 'processing' and unstarted(task_id, t) then
    extend_slots(base, task_id, t, now + lease_ms)  -- the job keeps its place and its attempt
    status = 'queued'
  elseif t.status == 'processing' then
    release_slots(base, task_id, t, now)
    if attempts_spent(t) < max_attempts then
      -- an upstream job already submitted is resumed by its id on the same account (§8)
      if (t.upstream_id or '') ~= '' then redis.call('HSET', task_key, 'resume_account', t.account) end
      requeue_front(base, task_key, t)
      status = 'pending'
    else
      local msg = 'lease lost ' .. attempts_spent(t) .. ' times: no worker finished the task'
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
