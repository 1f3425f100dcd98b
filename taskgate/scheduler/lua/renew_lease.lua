-- renew_lease.lua: extend the slot leases of a running attempt (fenced).
-- KEYS[1] task         task hash
-- KEYS[2] leases       global lease index
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] task_id
-- ARGV[4] attempt      the attempt the caller runs
-- ARGV[5] lease_ms     new lease length
-- Returns: {0, deadline, cancel_requested (0/1)}
-- Errors: {-2} the attempt is not current or its lease was already reaped

--- @include "store/lua/lib/common.lua"

local task_key, leases = KEYS[1], KEYS[2]
local base, task_id, attempt, lease_ms = ARGV[1], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local now = clock_ms(ARGV[2])

local t = hash_map(task_key)
if t.status ~= 'processing' or num(t.attempt, 0) ~= attempt then return {-2} end
if not redis.call('ZSCORE', leases, task_id) then return {-2} end
local deadline = now + lease_ms
redis.call('ZADD', leases, 'XX', deadline, task_id)
if t.pool == 'ppu' then redis.call('ZADD', base .. ':user_leases:' .. t.user, 'XX', deadline, task_id) end
redis.call('ZADD', base .. ':account_leases:' .. t.account, 'XX', deadline, task_id)
redis.call('ZADD', base .. ':account_mode_leases:' .. t.account .. ':' .. t.lane, 'XX', deadline, task_id)
redis.call('HSET', task_key, 'lease_deadline', deadline)
return {0, deadline, t.cancel == '1' and 1 or 0}
