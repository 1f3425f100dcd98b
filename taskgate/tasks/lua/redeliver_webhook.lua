-- redeliver_webhook.lua: an operator queues one more webhook delivery of a task's current state
-- (a new status sequence, so the ordering rule of §7 lets it through).
-- KEYS[1] task         task hash
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] task_id
-- Returns: {0, delivery_id}
-- Errors: {-1, 'task', task_id} unknown task; {-5, 'without a webhook endpoint'} nothing to deliver to

--- @include "store/lua/lib/common.lua"
--- @include "webhooks/lua/lib/outbox.lua"

local task_key = KEYS[1]
local base, task_id = ARGV[1], ARGV[3]
local now = clock_ms(ARGV[2])

if redis.call('EXISTS', task_key) == 0 then return {-1, 'task', task_id} end
if (redis.call('HGET', task_key, 'webhook_endpoint') or '') == '' then
  return {-5, 'without a webhook endpoint'}
end
outbox_push(base, task_key, task_id, now)
return {0, task_id .. ':' .. redis.call('HGET', task_key, 'status_seq')}
