-- cancel_task.lua: cancel one task of a user: a pending task leaves its queue refunded; a
-- processing task is flagged for its worker (which cancels upstream, then finishes it).
-- KEYS[1] task         task hash
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] task_id
-- ARGV[4] user_id      the caller; another user's task is "not found"
-- Returns: {0, status} the task's status afterwards (failed, processing, or completed)
-- Errors: {-1, task_id} unknown task or another user's

--- @include "store/lua/lib/common.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "billing/lua/lib/wallet.lua"
--- @include "webhooks/lua/lib/outbox.lua"
--- @include "tasks/lua/lib/settle.lua"

local task_key = KEYS[1]
local base, task_id, user_id = ARGV[1], ARGV[3], ARGV[4]
local now = clock_ms(ARGV[2])

local t = hash_map(task_key)
if t.id == nil or t.user ~= user_id then return {-1, task_id} end
if t.status == 'processing' then
  redis.call('HSET', task_key, 'cancel', 1)
  return {0, 'processing'}
end
if t.status ~= 'pending' then return {0, t.status} end

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
return {0, 'failed'}
