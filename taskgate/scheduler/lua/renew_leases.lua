-- renew_leases.lua: extend the slot leases of many running attempts at once (each fenced).
-- One call per worker per renewal period replaces one renew_lease call per waiting task; each
-- task is checked and extended exactly as renew_lease does it.
-- KEYS[1] leases       global lease index
-- ARGV[1] base         Keys.base (task keys are base .. ':task:' .. id, as Keys.task)
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] lease_ms     new lease length
-- ARGV[4..] leases       task_id, attempt, task_id, attempt, ... (pairs)
-- Returns: {0, deadline, lost, cancel} with lost: ids whose attempt is not current or whose lease
--          was already reaped (not extended), cancel: renewed ids whose user asked to cancel
-- Errors: {-7} odd number of task_id/attempt arguments

--- @include "store/lua/lib/common.lua"

local leases = KEYS[1]
local base, lease_ms = ARGV[1], tonumber(ARGV[3])
local now = clock_ms(ARGV[2])
if (#ARGV - 3) % 2 ~= 0 then return {-7} end

local deadline = now + lease_ms
local lost, cancel = {}, {}
for i = 4, #ARGV, 2 do
  local task_id, attempt = ARGV[i], tonumber(ARGV[i + 1])
  local task_key = base .. ':task:' .. task_id
  local t = redis.call('HMGET', task_key, 'status', 'attempt', 'pool', 'user', 'account', 'lane', 'cancel')
  if t[1] ~= 'processing' or tonumber(t[2]) ~= attempt or not redis.call('ZSCORE', leases, task_id) then
    lost[#lost + 1] = task_id
  else
    redis.call('ZADD', leases, 'XX', deadline, task_id)
    if t[3] == 'ppu' then redis.call('ZADD', base .. ':user_leases:' .. t[4], 'XX', deadline, task_id) end
    redis.call('ZADD', base .. ':account_leases:' .. t[5], 'XX', deadline, task_id)
    redis.call('ZADD', base .. ':account_mode_leases:' .. t[5] .. ':' .. t[6], 'XX', deadline, task_id)
    redis.call('HSET', task_key, 'lease_deadline', deadline)
    if t[7] == '1' then cancel[#cancel + 1] = task_id end
  end
end
return {0, deadline, lost, cancel}
