-- cancel_tasks.lua: cancel several tasks of a user, all or nothing: every id is checked first
-- (it exists and is the caller's); one unknown or foreign id cancels none of them.
-- KEYS[1] user         the caller's user hash (the task hashes are built from base: base:task:<id>)
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] user_id      the caller
-- ARGV[4..] task_ids   the tasks to cancel (a repeated id is cancelled once)
-- Returns: {0, status1, status2, ...} each task's status afterwards, in the order given
-- Errors: {-1, 'task', task_id} the first unknown task or another user's (nothing was changed)

--- @include "store/lua/lib/common.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "billing/lua/lib/wallet.lua"
--- @include "webhooks/lua/lib/outbox.lua"
--- @include "tasks/lua/lib/settle.lua"
--- @include "tasks/lua/lib/cancel.lua"

local base, user_id = ARGV[1], ARGV[3]
local now = clock_ms(ARGV[2])

local tasks = {}
for i = 4, #ARGV do
  local task_key = base .. ':task:' .. ARGV[i]
  local t = hash_map(task_key)
  if t.id == nil or t.user ~= user_id then return {-1, 'task', ARGV[i]} end
  tasks[#tasks + 1] = {ARGV[i], task_key, t}
end

local out, done = {0}, {}
for _, item in ipairs(tasks) do
  if done[item[1]] == nil then
    done[item[1]] = cancel_one(base, now, item[1], item[2], item[3])
  end
  out[#out + 1] = done[item[1]]
end
return out
