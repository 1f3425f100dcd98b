-- record_incorrect.lua: count a task refused before queueing (B8 prompt checker) as incorrect (B6).
-- KEYS[1] user         user hash (to confirm it exists)
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] user_id
-- Returns: {0, incorrect_today}
-- Errors: {-1, 'user', user_id} unknown user

--- @include "store/lua/lib/common.lua"
--- @include "billing/lua/lib/wallet.lua"

local base, user_id = ARGV[1], ARGV[3]
local now = clock_ms(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 'user', user_id} end
local daily = base .. ':daily:' .. user_id .. ':' .. utc_day(now)
local count = redis.call('HINCRBY', daily, 'incorrect', 1)
redis.call('EXPIRE', daily, DAILY_TTL_S)
return {0, count}
