-- Account availability index (S2, S8). For every tier (owner, owner#backup, shared), model and
-- mode, the zset avail:<tier>:<model>:<mode> holds the accounts that can take a task now, scored
-- priority * 1e9 + free slots * 1e3 + weight, so ZREVRANGE yields S8's order. Needs common.lua.

local function account_tier(acc)
  if acc.owner == 'shared' then return 'shared' end
  if acc.backup == '1' then return acc.owner .. '#backup' end
  return acc.owner
end

-- Free slots of an account for one mode (total capacity and the optional per-mode capacity).
-- `used` (the account's slots in use) may be passed when the caller already counted them.
local function account_free(base, id, acc, mode, used)
  used = used or redis.call('ZCARD', base .. ':account_leases:' .. id)
  local free = num(acc.capacity, 0) - used
  local mode_cap = tonumber(acc['cap_' .. mode])
  if mode_cap then
    local used = redis.call('ZCARD', base .. ':account_mode_leases:' .. id .. ':' .. mode)
    if mode_cap - used < free then free = mode_cap - used end
  end
  return free
end

local function account_usable(base, id, acc, now)
  if acc.state == 'cooling_down' and num(acc.cooldown_until, 0) <= now then return true end
  if acc.state ~= 'active' then return false end
  local cap = num(acc.daily_cap, 0)
  if cap > 0 then
    local used = num(redis.call('GET', base .. ':account_daily:' .. id .. ':' .. utc_day(now)), 0)
    if used >= cap then return false end
  end
  return true
end

-- Move every flow parked on a tier/model/mode back to its ready lane, and every task set aside on
-- it back to its flow.
local function unpark_cap(base, tier, model, mode)
  local flows = base .. ':parked_cap:' .. tier .. ':' .. model .. ':' .. mode
  local tasks = base .. ':parked_task:' .. tier .. ':' .. model .. ':' .. mode
  if redis.call('EXISTS', flows, tasks) == 0 then return end  -- the usual case: one call, not two
  unpark_set(base, flows)
  unpark_tasks(base, tasks)
end

-- Recompute the account's place in every avail zset it belongs to; when it has room (and `wake`
-- is not false: a booking only ever takes room away), wake the flows parked waiting for such an
-- account. `acc` may be passed when the caller already read the account hash.
local function avail_refresh(base, id, now, acc, wake)
  acc = acc or hash_map(base .. ':account:' .. id)
  if acc.id == nil then return end
  local tier = account_tier(acc)
  local usable = account_usable(base, id, acc, now)
  local models, modes = split_csv(acc.models), split_csv(acc.modes)
  local used = redis.call('ZCARD', base .. ':account_leases:' .. id)
  for _, mode in ipairs(modes) do
    local free = usable and account_free(base, id, acc, mode, used) or 0
    local score = num(acc.priority, 0) * 1e9 + free * 1e3 + math.min(num(acc.weight, 1), 999)
    for _, model in ipairs(models) do
      local key = base .. ':avail:' .. tier .. ':' .. model .. ':' .. mode
      if free > 0 then
        redis.call('ZADD', key, score, id)
        if wake ~= false then unpark_cap(base, tier, model, mode) end
      else
        redis.call('ZREM', key, id)
        -- an account that left service: flows waiting for it decide again (S6 failover)
        if not usable and wake ~= false then unpark_cap(base, tier, model, mode) end
      end
    end
  end
end

-- Remove an account from every avail zset (removal, pause, ban).
local function avail_drop(base, id, acc)
  local tier = account_tier(acc)
  for _, mode in ipairs(split_csv(acc.modes)) do
    for _, model in ipairs(split_csv(acc.models)) do
      redis.call('ZREM', base .. ':avail:' .. tier .. ':' .. model .. ':' .. mode, id)
    end
  end
end
