-- cancel_task.lua: cancel one task of a user: a pending task leaves its queue refunded; a
-- processing task is flagged for its worker (which cancels upstream, then finishes it).
-- KEYS[1] task         task hash
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] task_id
-- ARGV[4] user_id      the caller; another user's task is "not found"
-- Returns: {0, status} the task's status afterwards (failed, processing, or completed)
-- Errors: {-1, 'task', task_id} unknown task or another user's

--- @include "store/lua/lib/common.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "billing/lua/lib/wallet.lua"
--- @include "webhooks/lua/lib/outbox.lua"
--- @include "tasks/lua/lib/settle.lua"
--- @include "tasks/lua/lib/cancel.lua"

local task_key = KEYS[1]
local base, task_id, user_id = ARGV[1], ARGV[3], ARGV[4]
local now = clock_ms(ARGV[2])

local t = hash_map(task_key)
if t.id == nil or t.user ~= user_id then return {-1, 'task', task_id} end
return {0, cancel_one(base, now, task_id, task_key, t)}
