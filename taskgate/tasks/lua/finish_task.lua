-- finish_task.lua: end one attempt of a task, fenced by its attempt number (B2, B4, B5, B6, §8).
-- A completed run also ends its account's cooldown streak (S9, as report_account's `success`), and
-- the reply carries the settled fields the worker's metrics count: no extra round trip for either.
-- KEYS[1] task         task hash
-- KEYS[2] failed       set of accounts this task failed on
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] task_id
-- ARGV[4] attempt      the attempt the caller ran (fencing token)
-- ARGV[5] outcome      completed | failed | incorrect | cancelled | retry | handback
--                      (handback: a stopping worker returns the attempt; it resumes elsewhere)
-- ARGV[6] output       JSON output ("" for none)
-- ARGV[7] error        JSON {code, message, raw_message} ("" for none)
-- ARGV[8] max_attempts attempts after which a retry becomes a failure (hand-backs do not count)
-- ARGV[9] blame        "1" when the account is to blame (a retry avoids it)
-- Returns: {0, status, fields}: the task's status afterwards (pending after a retry or handback) and
--          fields = {name, value, ...} for each of REPORTED below (metrics/tasks.py FINISH_FIELDS),
--          read after settlement ("" when unset; a retry's `error` is its ARGV[7], not stored)
-- Errors: {-1, 'task', task_id} unknown task; {-2} stale attempt; {-6, status} already final (a repeat
--         after an unknown outcome ends here: the first call settled it)

--- @include "store/lua/lib/common.lua"
--- @include "store/lua/lib/keys.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "pool/lua/lib/avail.lua"
--- @include "scheduler/lua/lib/leases.lua"
--- @include "billing/lua/lib/wallet.lua"
--- @include "webhooks/lua/lib/outbox.lua"
--- @include "tasks/lua/lib/settle.lua"

local task_key, failed = KEYS[1], KEYS[2]
local base, task_id, attempt, outcome = ARGV[1], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local max_attempts = tonumber(ARGV[8])
local now = clock_ms(ARGV[2])

-- The task's fields the worker's metrics count (metrics/tasks.py FINISH_FIELDS), as settled.
local REPORTED = {'attempt', 'created_ms', 'pool', 'status', 'outcome', 'model', 'lane', 'unit', 'frozen',
  'consume', 'dispatched_ms', 'started_ms', 'ended_ms', 'failover', 'error'}

local function ended(status, retry_error)
  local values, fields = redis.call('HMGET', task_key, unpack(REPORTED)), {}
  for i, name in ipairs(REPORTED) do
    fields[#fields + 1] = name
    fields[#fields + 1] = values[i] or ''
    -- a retry's error is not stored on the (pending) task, but its metrics need the reason
    if name == 'error' and retry_error then fields[#fields] = retry_error end
  end
  return {0, status, fields}
end

-- S9: a success on an active account ends its cooldown streak (report_account.lua's `success`);
-- a cooling-down account keeps it, so its next cooldown still grows.
local function end_cooldown_streak(account)
  if (account or '') == '' then return end
  local account_key = K.account(base, account)
  if redis.call('HGET', account_key, 'state') == 'active' then
    redis.call('HDEL', account_key, 'cooldown_streak')
  end
end

local t = hash_map(task_key)
if t.id == nil then return {-1, 'task', task_id} end
if t.status == 'completed' or t.status == 'failed' then
  redis.call('HSET', task_key, 'status', t.status)  -- a repeat writes, so a WAIT after it covers the first
  return {-6, t.status}
end
if t.status ~= 'processing' or num(t.attempt, 0) ~= attempt then return {-2} end

release_slots(base, task_id, t, now)
if outcome == 'handback' then
  if (t.upstream_id or '') ~= '' then redis.call('HSET', task_key, 'resume_account', t.account) end
  redis.call('HINCRBY', task_key, 'handbacks', 1)
  requeue_front(base, task_key, t)
  return ended('pending')
end
if outcome == 'retry' then
  if ARGV[9] == '1' and (t.account or '') ~= '' then redis.call('SADD', failed, t.account) end
  if attempts_spent(t) < max_attempts then
    -- a new upstream job: `retries` gives the next submit on an account it failed on a new
    -- idempotency key (dispatch_tasks.lua), so it does not get its failed job back (S10)
    redis.call('HINCRBY', task_key, 'retries', 1)
    redis.call('HSET', task_key, 'upstream_id', '', 'resume_account', '', 'progress', 0)
    requeue_front(base, task_key, t)
    return ended('pending', ARGV[7])
  end
  outcome = 'failed'
end
settle_final(base, now, task_id, task_key, t, outcome, ARGV[6], ARGV[7])
if outcome == 'completed' then end_cooldown_streak(t.account) end
return ended(outcome == 'completed' and 'completed' or 'failed')
