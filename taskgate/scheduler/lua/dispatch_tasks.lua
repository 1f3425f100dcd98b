-- dispatch_tasks.lua: hand up to N waiting tasks to accounts, fairly and atomically (S1-S8).
-- KEYS[1] sched        scheduler state hash (vtime:<lane>, relax_credit)
-- KEYS[2] arq_queue    arq's queue zset
-- KEYS[3] worker_jobs  list of dispatched arq job ids that workers pop (no queue scan)
-- ARGV[1] base         Keys.base; flow, ready, task, user, account keys are built from it
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] max_n        most dispatches in this call
-- ARGV[4] lease_ms     lease length of the booked slots
-- ARGV[5] relax_pm     relax share floor in permille (S3)
-- ARGV[6] relax_wait   most ms a relax task may wait while capacity exists (S3)
-- ARGV[7] job_prefix   arq job key prefix ("arq:job:"); job key = job_prefix .. K.arq_job_id(base, ...)
-- ARGV[8] job_ttl_ms   lifetime of the arq job key
-- ARGV[9] max_wait_ms  a task no account can serve (now or after a running cooldown) fails after
--                      waiting this long (S10); due deadlines are re-examined first
-- ARGV[10] max_queued  back-pressure: no dispatch while this many dispatched jobs wait in
--                      worker_jobs, not yet taken by a worker (0 = no bound)
-- Returns: {0, n, task_id_1, attempt_1, account_1, ...}
-- Errors: none (a task that cannot be dispatched stays queued with a wait reason: its flow is
--         parked, or the task alone is set aside when its own exclusions stop it)

--- @include "store/lua/lib/common.lua"
--- @include "store/lua/lib/keys.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "pool/lua/lib/avail.lua"
--- @include "scheduler/lua/lib/leases.lua"
--- @include "billing/lua/lib/wallet.lua"
--- @include "webhooks/lua/lib/outbox.lua"
--- @include "scheduler/lua/lib/select.lua"

local sched, arq_queue, worker_jobs = KEYS[1], KEYS[2], KEYS[3]
local base, max_n, lease_ms = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local relax_pm, relax_wait = tonumber(ARGV[5]), tonumber(ARGV[6])
local job_prefix, job_ttl = ARGV[7], tonumber(ARGV[8])
local max_wait, max_queued = tonumber(ARGV[9]), tonumber(ARGV[10])
local now = clock_ms(ARGV[2])
local CREDIT_FULL = 1000

local TASK_FIELDS = {'id', 'user', 'pool', 'lane', 'model_group', 'bot_id', 'attempt', 'flow', 'status',
  'started_ms', 'resume_account', 'ppu_price', 'ppu_unit', 'ppu_relax', 'frozen', 'unit', 'settled',
  'webhook_endpoint', 'created_ms', 'dispatched_ms', 'retries'}

local function task_hash(tkey)
  local values = redis.call('HMGET', tkey, unpack(TASK_FIELDS))
  local t = {}
  for i, name in ipairs(TASK_FIELDS) do if values[i] then t[name] = values[i] end end
  return t
end

local USER_FIELDS = {'cap', 'weight', 'failover', 'relax_limit'}

local function user_hash(user_id)
  local values = redis.call('HMGET', base .. ':user:' .. user_id, unpack(USER_FIELDS))
  local u = {}
  for i, name in ipairs(USER_FIELDS) do if values[i] then u[name] = values[i] end end
  return u
end

-- Lanes found empty stay empty for the rest of this call: nothing in a dispatch readies a flow
-- (flows woken by a repaired index entry wake the scheduler for its next call).
local empty = {}

-- The flow to serve next in a lane (lowest virtual pass) and its score, or nil.
local function head_of(lane)
  if empty[lane] then return nil end
  local r = redis.call('ZRANGE', base .. ':ready:' .. lane, 0, 0, 'WITHSCORES')
  if #r == 0 then
    empty[lane] = true
    return nil
  end
  return r[1], tonumber(r[2])
end

-- S3: turbo > fast > relax, but relax gets its floor share and no relax task waits too long.
-- Returns lane, flow, score.
local function pick_lane(relax_ready, credit)
  if relax_ready then
    if credit >= CREDIT_FULL then return 'relax', head_of('relax') end
    local oldest = redis.call('ZRANGE', base .. ':relax_waiting', 0, 0, 'WITHSCORES')
    if #oldest > 0 and now - tonumber(oldest[2]) > relax_wait then
      local flow = redis.call('HGET', base .. ':task:' .. oldest[1], 'flow')
      local score = flow and redis.call('ZSCORE', base .. ':ready:relax', flow)
      if score then return 'relax', flow, tonumber(score) end
    end
  end
  for _, lane in ipairs({'turbo', 'fast'}) do
    local flow, score = head_of(lane)
    if flow then return lane, flow, score end
  end
  if relax_ready then return 'relax', head_of('relax') end
  return nil
end

-- Book the slots, mark the task processing, and enqueue its arq job: one attempt, once.
local function book(task_id, tkey, t, id, acc)
  local attempt = num(t.attempt, 0) + 1
  hold_slots(base, task_id, t, id, now + lease_ms)
  if t.lane == 'relax' then redis.call('ZREM', base .. ':relax_waiting', task_id) end
  local started = num(t.started_ms, 0) > 0 and t.started_ms or now
  -- the upstream idempotency key: the task id, but a new one when the task goes back to an account
  -- whose job for it failed (else the upstream would return that failed job); a resumed attempt
  -- keeps its key (retries only grows when a job fails)
  local job_key = task_id
  if num(t.retries, 0) > 0 and redis.call('SISMEMBER', base .. ':task_failed:' .. task_id, id) == 1 then
    job_key = task_id .. ':retry' .. t.retries
  end
  redis.call('HSET', tkey, 'status', 'processing', 'attempt', attempt, 'account', id,
    'lease_deadline', now + lease_ms, 'dispatched_ms', now, 'started_ms', started, 'job_key', job_key)
  if num(acc.daily_cap, 0) > 0 then
    local daily = base .. ':account_daily:' .. id .. ':' .. utc_day(now)
    redis.call('INCR', daily)
    redis.call('EXPIRE', daily, 2 * 86400)
  end
  avail_refresh(base, id, now, acc, false)
  local job_id = K.arq_job_id(base, task_id, attempt)  -- inside the hash tag (keys.lua)
  redis.call('SET', job_prefix .. job_id, '{"t":1,"f":"run_task","a":["' .. task_id .. '",' .. attempt ..
    '],"k":{},"et":' .. now .. '}', 'PX', job_ttl)
  redis.call('ZADD', arq_queue, now, job_id)
  redis.call('RPUSH', worker_jobs, job_id)
  if (t.webhook_endpoint or '') ~= '' then outbox_push(base, tkey, task_id, now) end
  return attempt
end

-- Move the served flow on by its stride (weighted rotation, S4) or let it go idle.
local function advance(ready, flow, score, user)
  if redis.call('LLEN', base .. ':flow:' .. flow) > 0 then
    redis.call('ZADD', ready, 'XX', score + 1000000 / math.max(num(user.weight, 1), 1), flow)
  else
    redis.call('ZREM', ready, flow)
    flow_idle(base, flow)
  end
end

-- S10: tasks whose wait deadline passed are looked at again now (served, or failed and refunded).
for _, task_id in ipairs(redis.call('ZRANGEBYSCORE', base .. ':pending_deadlines', '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', base .. ':pending_deadlines', task_id)
  local v = redis.call('HMGET', base .. ':task:' .. task_id, 'status', 'aside', 'flow')
  if v[1] == 'pending' then
    if v[2] == '1' then task_return(base, task_id) else flow_wake(base, v[3]) end
  end
end

-- Back-pressure: dispatch no faster than the workers take jobs; the rest waits as pending (no slot
-- held, no lease running), where fairness still orders it.
if max_queued > 0 then max_n = math.min(max_n, max_queued - redis.call('LLEN', worker_jobs)) end
local out, n, budget = {0, 0}, 0, math.max(max_n, 0) * 4 + 16
local credit = num(redis.call('HGET', sched, 'relax_credit'), 0)
local vtimes, users = {}, {}
while n < max_n and budget > 0 do
  budget = budget - 1
  local relax_ready = not empty.relax and redis.call('EXISTS', base .. ':ready:relax') == 1
  if not relax_ready then empty.relax = true end
  local lane, flow, score = pick_lane(relax_ready, credit)
  if lane == nil then break end
  local ready = base .. ':ready:' .. lane
  local task_id = redis.call('LINDEX', base .. ':flow:' .. flow, 0)
  if not task_id then
    redis.call('ZREM', ready, flow)
    flow_idle(base, flow)
  else
    local tkey = base .. ':task:' .. task_id
    local t = task_hash(tkey)
    local user = users[t.user] or user_hash(t.user)
    users[t.user] = user
    local id, acc = select_for(base, now, task_id, tkey, t, user, max_wait)
    if id then
      redis.call('LPOP', base .. ':flow:' .. flow)
      local attempt = book(task_id, tkey, t, id, acc)
      advance(ready, flow, score, user)
      vtimes[lane] = score
      if relax_ready then  -- S3 floor: relax earns its share of every dispatch while it waits
        credit = credit + relax_pm
        if lane == 'relax' then credit = math.max(credit - CREDIT_FULL, 0) end
        credit = math.min(credit, CREDIT_FULL + relax_pm)
      end
      n = n + 1
      out[#out + 1], out[#out + 2], out[#out + 3] = task_id, attempt, id
    end
  end
end
for lane, vt in pairs(vtimes) do redis.call('HSET', sched, 'vtime:' .. lane, vt) end
redis.call('HSET', sched, 'relax_credit', credit)
if n > 0 then
  redis.call('HINCRBY', sched, 'dispatched', n)
end
out[2] = n
return out
