-- Cancelling one task that is known to be the caller's (cancel_task.lua, cancel_tasks.lua).
-- Needs common.lua, flows.lua, wallet.lua, outbox.lua, settle.lua.

-- a pending task leaves its queue refunded; a processing task is flagged for its worker (which
-- cancels upstream, then finishes it); returns the task's status afterwards
local function cancel_one(base, now, task_id, task_key, t)
  if t.status == 'processing' then
    redis.call('HSET', task_key, 'cancel', 1)
    return 'processing'
  end
  if t.status ~= 'pending' then return t.status end
  redis.call('LREM', base .. ':flow:' .. t.flow, 1, task_id)
  redis.call('ZREM', base .. ':relax_waiting', task_id)
  redis.call('SREM', base .. ':tasks_aside', task_id)
  -- its place is free at once: a flow parked on this task is looked at again (S5, S10)
  if redis.call('HGET', base .. ':flow_meta', t.flow) ~= 'r' then
    flow_wake(base, t.flow)
    wake_scheduler(base)
  end
  -- an emptied ready flow is dropped lazily by dispatch; cancelled before dispatch -> refunded (B2)
  settle_final(base, now, task_id, task_key, t, 'cancelled', '',
    cjson.encode({code = 499, message = 'cancelled', raw_message = 'cancelled by the user'}))
  return 'failed'
end
