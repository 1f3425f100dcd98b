-- create_task.lua: accept a task: idempotency, B6 block, B5 relax pricing, B1 freeze (with B7), queue.
-- KEYS[1] task        task hash (must not exist)
-- KEYS[2] user        user hash (cap, relax_limit, incorrect_limit, incorrect_penalty)
-- KEYS[3] wallet      the user's wallet hash
-- KEYS[4] ledger      the user's ledger stream
-- KEYS[5] user_tasks  zset of the user's tasks by creation time
-- KEYS[6] idem        idempotency key -> task id (unused when ARGV[9] is 0)
-- KEYS[7] flow        the flow list this task joins
-- ARGV[1] base        Keys.base
-- ARGV[2] now         clock override in ms ("" = Redis TIME)
-- ARGV[3] task_id
-- ARGV[4] fields      JSON object of the task's static string fields (model, input, config, ...)
-- ARGV[5] unit        wallet unit of the price ("" for BYOA)
-- ARGV[6] price       base price (integer >= 0; 0 for BYOA)
-- ARGV[7] relax       "1" when the task counts toward the daily relax limit (B5)
-- ARGV[8] flow_id     the flow's id (its key is KEYS[7])
-- ARGV[9] idem_ttl_ms lifetime of the idempotency record (0 = no Idempotency-Key)
-- ARGV[10] key_digest (optional, "" = no check) the caller's API key digest: K.api_key(base, it)
--          must still name the user of KEYS[2], checked before anything else
-- ARGV[11] user_stamp (with ARGV[10]) plan, service_mode and webhook of the user as the caller
--          priced the task with, joined by "\n": the user hash must still hold them
-- Returns: {0, task_id, created(1) | duplicate(0)}; a repeat of the same call (same task_id, after
--          an unknown outcome) is a duplicate too, so retrying it freezes nothing twice. A duplicate
--          rewrites its idempotency record / task id (same value) so a WAIT that follows covers the
--          first write as well. A created task adds what its first read needs:
--          {0, task_id, 1, created_ms, unit, frozen, running (the user's leased PPU slots),
--          flow_wait (its flow's wait reason, or false)}.
-- Errors: {-3, unit, needed, available} not enough credits; {-4, limit, until_ms} B6 block;
--         {-8} the API key is unknown or not this user's; {-9} the user's plan or settings changed

--- @include "store/lua/lib/common.lua"
--- @include "billing/lua/lib/wallet.lua"
--- @include "scheduler/lua/lib/flows.lua"
--- @include "store/lua/lib/keys.lua"

local task_key, user_key, wallet, ledger, user_tasks, idem, flow_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local base, task_id, unit, price = ARGV[1], ARGV[3], ARGV[5], tonumber(ARGV[6])
local relax, flow, idem_ttl = ARGV[7] == '1', ARGV[8], tonumber(ARGV[9])
local now = clock_ms(ARGV[2])

-- the caller authenticated from a cache: a revoked or rotated key, or a changed plan, stops here
local key_digest = ARGV[10] or ''
if key_digest ~= '' then
  local owner = redis.call('GET', K.api_key(base, key_digest))
  local u = redis.call('HMGET', user_key, 'id', 'plan', 'service_mode', 'webhook')
  if not owner or owner ~= u[1] then return {-8} end
  if ARGV[11] ~= table.concat({u[2] or '', u[3] or '', u[4] or ''}, '\n') then return {-9} end
end

if idem_ttl > 0 then
  local existing = redis.call('GET', idem)
  if existing then
    redis.call('SET', idem, existing, 'KEEPTTL')
    return {0, existing, 0}
  end
end
if redis.call('HEXISTS', task_key, 'id') == 1 then
  redis.call('HSET', task_key, 'id', task_id)
  return {0, task_id, 0}
end

local user = hash_map(user_key)
local fields = cjson.decode(ARGV[4])
local ppu = fields.pool == 'ppu'
local daily = base .. ':daily:' .. fields.user .. ':' .. utc_day(now)

-- B6: a Free user past the day's incorrect-task limit may not create PPU tasks.
if ppu and user.incorrect_penalty == 'block' then
  if num(redis.call('HGET', daily, 'incorrect'), 0) >= num(user.incorrect_limit, 0) then
    return {-4, num(user.incorrect_limit, 0), next_day_ms(now)}
  end
end

-- B5: relax tasks beyond the plan's limit plus the day's bonus cost double.
local over = false
if ppu and relax then price, over = relax_price(daily, user, price) end

if ppu then
  local ok, available = wallet_freeze(wallet, ledger, user.id or '', task_id, unit, price, now)
  if not ok then return {-3, unit, price, available} end
  if relax then count_relax(daily) end
else
  unit, price = '', 0
end

-- empty and zero fields are not stored (memory per queued task); readers default them
for name, value in pairs(fields) do
  if value ~= '' and value ~= '0' then redis.call('HSET', task_key, name, value) end
end
redis.call('HSET', task_key, 'id', task_id, 'status', 'pending', 'created_ms', now, 'flow', flow)
if unit ~= '' then redis.call('HSET', task_key, 'unit', unit) end
if price > 0 then redis.call('HSET', task_key, 'frozen', price) end
if over then redis.call('HSET', task_key, 'relax_over', 1) end
redis.call('ZADD', user_tasks, now, task_id)
if idem_ttl > 0 then redis.call('SET', idem, task_id, 'PX', idem_ttl) end

redis.call('RPUSH', flow_key, task_id)
if fields.lane == 'relax' then redis.call('ZADD', base .. ':relax_waiting', now, task_id) end
if not ppu then redis.call('ZADD', base .. ':byoa_waiting', now, task_id) end
flow_activate(base, flow)
wake_scheduler(base)
local running = redis.call('ZCARD', K.user_leases(base, fields.user))
local flow_wait = redis.call('HGET', base .. ':flow_wait', flow)
return {0, task_id, 1, now, unit, price, running, flow_wait}
