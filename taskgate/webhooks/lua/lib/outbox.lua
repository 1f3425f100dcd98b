-- Webhook outbox (§7): every status change (and progress step) of a task with a webhook endpoint
-- queues a delivery "<task>:<seq>"; the sender always posts the task's current state. Needs common.lua.

-- Wake a blocked webhook sender at once (its interval poll stays the fallback). A few tokens at
-- most: one sender woken claims every delivery due, so a burst needs no token per delivery.
local function webhook_wake(base)
  local key = base .. ':webhook_wake'
  if redis.call('LLEN', key) < 4 then redis.call('LPUSH', key, '1') end
end

local function outbox_push(base, task_key, task_id, now_ms)
  local endpoint = redis.call('HGET', task_key, 'webhook_endpoint')
  if not endpoint or endpoint == '' then return end
  local seq = redis.call('HINCRBY', task_key, 'status_seq', 1)
  local delivery = task_id .. ':' .. seq
  redis.call('HSET', base .. ':webhook_delivery:' .. delivery, 'task_id', task_id, 'seq', seq,
    'created_ms', now_ms, 'attempts', 0)
  redis.call('ZADD', base .. ':webhook_outbox', now_ms, delivery)
  webhook_wake(base)
end
