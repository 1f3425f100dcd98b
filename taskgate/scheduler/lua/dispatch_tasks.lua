-- dispatch_tasks.lua: hand up to N waiting tasks to accounts, fairly and atomically (S1-S8).
-- KEYS[1] sched        scheduler state hash (vtime:<lane>, relax_credit)
-- KEYS[2] arq_queue    arq's queue zset
-- KEYS[3] worker_wake  list that idle workers block on
-- ARGV[1] base         Keys.base; flow, ready, task, user, account keys are built from it
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] max_n        most dispatches in this call
-- ARGV[4] lease_ms     lease length of the booked slots
-- ARGV[5] relax_pm     relax share floor in permille (S3)
-- ARGV[6] relax_wait   most ms a relax task may wait while capacity exists (S3)
-- ARGV[7] job_prefix   arq job key prefix ("arq:job:")
-- ARGV[8] job_ttl_ms   lifetime of the arq job key
-- Returns: {0, n, task_id_1, attempt_1, account_1, ...}
-- Errors: none (a task that cannot be dispatched stays queued; its flow is parked)

--- @include "store/lua/lib/common.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "pool/lua/lib/avail.lua"
--- @include "scheduler/lua/lib/leases.lua"
--- @include "billing/lua/lib/wallet.lua"
--- @include "webhooks/lua/lib/outbox.lua"
--- @include "scheduler/lua/lib/select.lua"

local sched, arq_queue, worker_wake = KEYS[1], KEYS[2], KEYS[3]
local base, max_n, lease_ms = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local relax_pm, relax_wait = tonumber(ARGV[5]), tonumber(ARGV[6])
local job_prefix, job_ttl = ARGV[7], tonumber(ARGV[8])
local now = clock_ms(ARGV[2])
local CREDIT_FULL = 1000

local function ready_count(lane) return redis.call('ZCARD', base .. ':ready:' .. lane) end

-- S3: turbo > fast > relax, but relax gets its floor share and no relax task waits too long.
local function pick_lane()
  local relax_ready = ready_count('relax') > 0
  if relax_ready then
    if num(redis.call('HGET', sched, 'relax_credit'), 0) >= CREDIT_FULL then return 'relax' end
    local oldest = redis.call('ZRANGE', base .. ':relax_waiting', 0, 0, 'WITHSCORES')
    if #oldest > 0 and now - tonumber(oldest[2]) > relax_wait then
      local flow = redis.call('HGET', base .. ':task:' .. oldest[1], 'flow')
      if flow and redis.call('HGET', base .. ':flow_meta', flow) == 'r' then return 'relax', flow end
    end
  end
  if ready_count('turbo') > 0 then return 'turbo' end
  if ready_count('fast') > 0 then return 'fast' end
  if relax_ready then return 'relax' end
  return nil
end

local function account_relax_credit(lane, relax_was_waiting)
  if not relax_was_waiting then return end
  local credit = num(redis.call('HGET', sched, 'relax_credit'), 0) + relax_pm
  if lane == 'relax' then credit = math.max(credit - CREDIT_FULL, 0) end
  redis.call('HSET', sched, 'relax_credit', math.min(credit, CREDIT_FULL + relax_pm))
end

-- Book the slots, mark the task processing, and enqueue its arq job: one attempt, once.
local function book(task_id, tkey, t, id, user)
  local attempt = num(t.attempt, 0) + 1
  hold_slots(base, task_id, t, id, now + lease_ms)
  redis.call('LPOP', base .. ':flow:' .. t.flow)
  redis.call('ZREM', base .. ':relax_waiting', task_id)
  redis.call('HSET', tkey, 'status', 'processing', 'attempt', attempt, 'account', id,
    'lease_deadline', now + lease_ms, 'dispatched_ms', now)
  if num(t.started_ms, 0) == 0 then redis.call('HSET', tkey, 'started_ms', now) end
  local daily = base .. ':account_daily:' .. id .. ':' .. utc_day(now)
  redis.call('INCR', daily)
  redis.call('EXPIRE', daily, 2 * 86400)
  avail_refresh(base, id, now)
  local job_id = task_id .. ':' .. attempt
  redis.call('SET', job_prefix .. job_id, '{"t":1,"f":"run_task","a":["' .. task_id .. '",' .. attempt ..
    '],"k":{},"et":' .. now .. '}', 'PX', job_ttl)
  redis.call('ZADD', arq_queue, now, job_id)
  if redis.call('LLEN', worker_wake) < 1000 then redis.call('LPUSH', worker_wake, '1') end
  outbox_push(base, tkey, task_id, now)
  return attempt
end

-- Move the served flow on by its stride (weighted rotation, S4) or let it go idle.
local function advance(lane, flow, score, user)
  redis.call('HSET', sched, 'vtime:' .. lane, score)
  if redis.call('LLEN', base .. ':flow:' .. flow) > 0 then
    redis.call('ZADD', base .. ':ready:' .. lane, 'XX', score + 1000000 / math.max(num(user.weight, 1), 1), flow)
  else
    redis.call('ZREM', base .. ':ready:' .. lane, flow)
    redis.call('HDEL', base .. ':flow_meta', flow)
  end
end

local out, n, budget = {0, 0}, 0, max_n * 4 + 16
while n < max_n and budget > 0 do
  budget = budget - 1
  local relax_was_waiting = ready_count('relax') > 0
  local lane, flow = pick_lane()
  if lane == nil then break end
  local ready = base .. ':ready:' .. lane
  if flow == nil then flow = redis.call('ZRANGE', ready, 0, 0)[1] end
  local score = tonumber(redis.call('ZSCORE', ready, flow))
  local task_id = redis.call('LINDEX', base .. ':flow:' .. flow, 0)
  if not task_id then
    redis.call('ZREM', ready, flow)
    redis.call('HDEL', base .. ':flow_meta', flow)
  else
    local tkey = base .. ':task:' .. task_id
    local t = hash_map(tkey)
    local user = hash_map(base .. ':user:' .. t.user)
    local id = select_for(base, now, task_id, tkey, t, user)
    if id then
      local attempt = book(task_id, tkey, t, id, user)
      advance(lane, flow, score, user)
      account_relax_credit(lane, relax_was_waiting)
      n = n + 1
      out[#out + 1], out[#out + 2], out[#out + 3] = task_id, attempt, id
    end
  end
end
out[2] = n
redis.call('HINCRBY', sched, 'dispatched', n)
return out
