-- requeue_task.lua: an operator puts a stuck task back in line. A processing task gives up its
-- slots and returns to the head of its flow as the reaper would do for an expired lease (the next
-- dispatch is a new attempt, so the old worker is fenced off; no new charge; an upstream job already
-- submitted is resumed by its id). A pending task's flow is made ready again and the scheduler woken.
-- KEYS[1] task         task hash
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] task_id
-- Returns: {0, previous_status}
-- Errors: {-1, 'task', task_id} unknown task; {-5, status} the task already ended

--- @include "store/lua/lib/common.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "pool/lua/lib/avail.lua"
--- @include "scheduler/lua/lib/leases.lua"

local task_key = KEYS[1]
local base, task_id = ARGV[1], ARGV[3]
local now = clock_ms(ARGV[2])

local t = hash_map(task_key)
if t.id == nil then return {-1, 'task', task_id} end
if t.status == 'processing' then
  release_slots(base, task_id, t, now)
  if (t.upstream_id or '') ~= '' then redis.call('HSET', task_key, 'resume_account', t.account) end
  requeue_front(base, task_key, t)
  wake_scheduler(base)
  return {0, 'processing'}
end
if t.status ~= 'pending' then return {-5, t.status} end
flow_wake(base, t.flow)
wake_scheduler(base)
return {0, 'pending'}
