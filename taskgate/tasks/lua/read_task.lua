-- read_task.lua: a customer's read of one task, authentication included, in one round trip.
-- KEYS[1] api_key     Keys.api_key(digest of the caller's key) -> user id
-- KEYS[2] task        the task hash
-- KEYS[3] flow_wait   hash flow -> why a parked flow waits (S10)
-- ARGV[1] base        Keys.base; K.user and K.user_leases of the key's user are derived
-- ARGV[2] task_id
-- ARGV[3..] fields  the user hash fields to return (users.USER_FIELDS)
-- Returns: {0, user, task, running, flow_wait}: user = the values of those fields (in that order,
--          false when unset), task = the task hash as a flat list, running = the user's
--          leased PPU slots (0 unless the task is a pending PPU task), flow_wait = the task's flow's
--          wait reason (false unless the task is pending and has no reason of its own). Reads only.
-- Errors: {-8} no such API key, or its user is gone; {-1, 'task', task_id} no such task of this user

--- @include "store/lua/lib/keys.lua"

local base, task_id = ARGV[1], ARGV[2]
local user_id = redis.call('GET', KEYS[1])
if not user_id then return {-8} end
local user = redis.call('HMGET', K.user(base, user_id), unpack(ARGV, 3))
if not user[1] then return {-8} end

local flat = redis.call('HGETALL', KEYS[2])
local task = {}
for i = 1, #flat, 2 do task[flat[i]] = flat[i + 1] end
if task.user ~= user_id then return {-1, 'task', task_id} end

local running, wait = 0, false
if task.status == 'pending' then
  if task.pool == 'ppu' then running = redis.call('ZCARD', K.user_leases(base, user_id)) end
  -- a task set aside carries its own reason; otherwise (or without one) its flow's applies
  if task.aside ~= '1' or (task.wait or '') == '' then wait = redis.call('HGET', KEYS[3], task.flow or '') end
end
return {0, user, flat, running, wait}
