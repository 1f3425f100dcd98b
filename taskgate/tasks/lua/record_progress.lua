-- record_progress.lua: store a running attempt's upstream id and/or progress (fenced).
-- KEYS[1] task         task hash
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] task_id
-- ARGV[4] attempt      the attempt the caller runs
-- ARGV[5] upstream_id  "" to leave unchanged
-- ARGV[6] progress     0-100, "" to leave unchanged
-- ARGV[7] notify       "1" to send a progress webhook when progress rose
-- Returns: {0, cancel_requested (0/1)}
-- Errors: {-2} the attempt is not current

--- @include "store/lua/lib/common.lua"
--- @include "webhooks/lua/lib/outbox.lua"

local task_key = KEYS[1]
local base, task_id, attempt = ARGV[1], ARGV[3], tonumber(ARGV[4])
local now = clock_ms(ARGV[2])

local t = hash_map(task_key)
if t.status ~= 'processing' or num(t.attempt, 0) ~= attempt then return {-2} end
if ARGV[5] ~= '' then redis.call('HSET', task_key, 'upstream_id', ARGV[5], 'upstream_account', t.account) end
local progress = tonumber(ARGV[6])
if progress and progress > num(t.progress, 0) then
  redis.call('HSET', task_key, 'progress', math.min(progress, 99))
  if ARGV[7] == '1' then outbox_push(base, task_key, task_id, now) end
end
return {0, t.cancel == '1' and 1 or 0}
