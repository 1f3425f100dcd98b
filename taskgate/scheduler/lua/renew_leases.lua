-- renew_leases.lua: extend the slot leases of many running attempts at once (each fenced).
-- One call per worker per renewal period renews every attempt it holds; each is fenced by its
-- attempt number and extended with leases.lua's extend_slots, as the reaper extends a queued one.
-- KEYS[1] leases       global lease index
-- ARGV[1] base         Keys.base (task keys built by keys.lua's K.task, as Keys.task)
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] lease_ms     new lease length
-- ARGV[4..] leases       task_id, attempt, task_id, attempt, ... (pairs)
-- Returns: {0, deadline, lost, cancel} with lost: ids whose attempt is not current or whose lease
--          was already reaped (not extended), cancel: renewed ids whose user asked to cancel
-- Errors: {-7} odd number of task_id/attempt arguments

--- @include "store/lua/lib/common.lua"
--- @include "store/lua/lib/keys.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "pool/lua/lib/avail.lua"
--- @include "scheduler/lua/lib/leases.lua"

local leases = KEYS[1]
local base, lease_ms = ARGV[1], tonumber(ARGV[3])
local now = clock_ms(ARGV[2])
if (#ARGV - 3) % 2 ~= 0 then return {-7} end

local deadline = now + lease_ms
local lost, cancel = {}, {}
for i = 4, #ARGV, 2 do
  local task_id, attempt = ARGV[i], tonumber(ARGV[i + 1])
  local task_key = K.task(base, task_id)
  local v = redis.call('HMGET', task_key, 'status', 'attempt', 'pool', 'user', 'account', 'lane', 'cancel')
  if v[1] ~= 'processing' or tonumber(v[2]) ~= attempt or not redis.call('ZSCORE', leases, task_id) then
    lost[#lost + 1] = task_id
  else
    extend_slots(base, task_id, {pool = v[3], user = v[4], account = v[5], lane = v[6]}, deadline)
    if v[7] == '1' then cancel[#cancel + 1] = task_id end
  end
end
return {0, deadline, lost, cancel}
