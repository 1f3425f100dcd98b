-- read_pending.lua: what waits and why (S10), for /metrics and `taskgate admin pool`; read only.
-- KEYS[1] flow_meta    hash flow -> r | u | c (non-idle flows)
-- KEYS[2] flow_wait    hash flow -> wait reason of a parked flow
-- KEYS[3] tasks_aside  set of tasks set aside out of their flows
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- Returns: {0, json} json = {"now": ms, "by_reason": {reason: n}, "oldest_ms": {lane: created_ms}}
-- Errors: none

--- @include "store/lua/lib/common.lua"
--- @include "scheduler/lua/lib/flows.lua"

local flow_meta, flow_wait, tasks_aside = KEYS[1], KEYS[2], KEYS[3]
local base = ARGV[1]
local now = clock_ms(ARGV[2])
local by_reason, oldest = {}, {}

local function count(reason, n, lane, created)
  if n <= 0 then return end
  by_reason[reason] = (by_reason[reason] or 0) + n
  if created and (oldest[lane] == nil or created < oldest[lane]) then oldest[lane] = created end
end

local meta = redis.call('HGETALL', flow_meta)
for i = 1, #meta, 2 do
  local flow, where = meta[i], meta[i + 1]
  local head = redis.call('LINDEX', base .. ':flow:' .. flow, 0)
  if head then
    local reason = where == 'r' and 'queued' or (redis.call('HGET', flow_wait, flow) or 'waiting_for_capacity')
    local created = tonumber(redis.call('HGET', base .. ':task:' .. head, 'created_ms'))
    count(reason, redis.call('LLEN', base .. ':flow:' .. flow), flow_parts(flow).lane, created)
  end
end
for _, id in ipairs(redis.call('SMEMBERS', tasks_aside)) do
  local v = redis.call('HMGET', base .. ':task:' .. id, 'status', 'aside', 'wait', 'lane', 'created_ms')
  if v[1] == 'pending' and v[2] == '1' then count(v[3] or 'waiting_for_capacity', 1, v[4], tonumber(v[5])) end
end
if next(by_reason) == nil then by_reason = cjson.decode('{}') end
if next(oldest) == nil then oldest = cjson.decode('{}') end
return {0, cjson.encode({now = now, by_reason = by_reason, oldest_ms = oldest})}
