-- Webhook outbox (§7): every status change (and progress step) of a task with a webhook endpoint
-- queues a delivery "<task>:<seq>"; the sender always posts the task's current state. Needs common.lua.
local function outbox_push(base, task_key, task_id, now_ms)
  local endpoint = redis.call('HGET', task_key, 'webhook_endpoint')
  if not endpoint or endpoint == '' then return end
  local seq = redis.call('HINCRBY', task_key, 'status_seq', 1)
  local delivery = task_id .. ':' .. seq
  redis.call('HSET', base .. ':webhook_delivery:' .. delivery, 'task_id', task_id, 'seq', seq,
    'created_ms', now_ms, 'attempts', 0)
  redis.call('ZADD', base .. ':webhook_outbox', now_ms, delivery)
end
