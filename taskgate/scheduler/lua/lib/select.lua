-- Account selection for the task at the head of a flow (S1, S2, S6, S8). Returns the chosen
-- account id and its hash, or nil after parking the flow (or failing the task when it can never run).
-- Needs common.lua, flows.lua, avail.lua, wallet.lua, outbox.lua.
--- @include "scheduler/lua/lib/waiting.lua"

local function user_at_cap(base, t, user)
  return redis.call('ZCARD', base .. ':user_leases:' .. t.user) >= num(user.cap, 0)
end

local function account_fits(base, now, id, acc, t)
  if acc.id == nil or not account_usable(base, id, acc, now) then return false end
  return account_free(base, id, acc, t.lane) > 0 and account_serves(acc, t)
end

-- S8 within one tier: the index is ordered by priority, free slots, weight; skip accounts this
-- task already failed on and repair stale index entries on the way.
local function pick_in_tier(base, now, tier, t, failed)
  local key = base .. ':avail:' .. tier .. ':' .. t.model_group .. ':' .. t.lane
  local first_attempt = num(t.attempt, 0) == 0
  for _, id in ipairs(redis.call('ZREVRANGE', key, 0, 15)) do
    if first_attempt or redis.call('SISMEMBER', failed, id) == 0 then
      local acc = hash_map(base .. ':account:' .. id)
      if account_fits(base, now, id, acc, t) then return id, acc end
      avail_refresh(base, id, now, acc)
    end
  end
  return nil
end

-- S6: a BYOA task moves to the shared pool as a PPU task: priced, frozen (B1, B5, B7), capped.
local function failover_to_ppu(base, now, task_id, tkey, t, user)
  local daily = base .. ':daily:' .. t.user .. ':' .. utc_day(now)
  local price, over = num(t.ppu_price, 0), false
  if t.ppu_relax == '1' then price, over = relax_price(daily, user, price) end
  local ok, available = wallet_freeze(base .. ':wallet:' .. t.user, base .. ':ledger:' .. t.user,
    t.user, task_id, t.ppu_unit, price, now)
  if not ok then
    fail_waiting(base, now, task_id, tkey, t, 402, 'failover to the shared pool needs ' .. price .. ' ' ..
      t.ppu_unit .. ', available ' .. available)
    return false
  end
  if t.ppu_relax == '1' then count_relax(daily) end
  redis.call('HSET', tkey, 'pool', 'ppu', 'unit', t.ppu_unit, 'frozen', price, 'failover', 1,
    'relax_over', over and 1 or 0)
  t.pool, t.unit, t.frozen = 'ppu', t.ppu_unit, price
  return true
end

local function select_pinned(base, now, task_id, tkey, t, max_wait)
  local acc = hash_map(base .. ':account:' .. t.bot_id)
  if acc.id == nil or acc.owner ~= t.user then
    fail_waiting(base, now, task_id, tkey, t, 404, 'bot_id ' .. t.bot_id .. ' is not one of your accounts')
    return nil
  end
  if account_fits(base, now, t.bot_id, acc, t) then return t.bot_id, acc end
  local reason = 'no_account_serves_model_mode'
  if account_usable(base, t.bot_id, acc, now) and account_serves(acc, t) then
    reason = 'waiting_for_capacity'
  elseif acc.state == 'cooling_down' and account_serves(acc, t) then
    reason = 'all_accounts_cooling_down'
  end
  return wait_or_fail(base, now, task_id, tkey, t, {account_tier(acc)}, reason, max_wait)
end

-- S6: does the user own a healthy account (busy or not) that serves this task and that the task
-- has not failed on? Then the task waits for it instead of failing over to the paid pool.
local function own_account_usable(base, now, task_id, t)
  local failed = base .. ':task_failed:' .. task_id
  for _, id in ipairs(redis.call('SMEMBERS', base .. ':owner_accounts:' .. t.user)) do
    local acc = hash_map(base .. ':account:' .. id)
    if acc.id ~= nil and account_usable(base, id, acc, now) and account_serves(acc, t)
        and redis.call('SISMEMBER', failed, id) == 0 then
      return true
    end
  end
  return false
end

local function select_for(base, now, task_id, tkey, t, user, max_wait)
  if t.pool == 'ppu' and user_at_cap(base, t, user) then
    flow_park_user(base, t.flow, t.user)
    return nil
  end
  local resume = t.resume_account or ''
  if resume ~= '' then
    local acc = hash_map(base .. ':account:' .. resume)
    if account_fits(base, now, resume, acc, t) then return resume, acc end
    redis.call('HSET', tkey, 'resume_account', '', 'upstream_id', '')  -- cannot resume: start afresh
  end
  if (t.bot_id or '') ~= '' then return select_pinned(base, now, task_id, tkey, t, max_wait) end
  local failed = base .. ':task_failed:' .. task_id
  local tiers = t.pool == 'ppu' and {'shared'} or {t.user, t.user .. '#backup'}
  for _, tier in ipairs(tiers) do
    local id, acc = pick_in_tier(base, now, tier, t, failed)
    if id then return id, acc end
  end
  if t.pool == 'byoa' and user.failover == '1' and not own_account_usable(base, now, task_id, t) then
    if user_at_cap(base, t, user) then
      flow_park_user(base, t.flow, t.user)
      flow_park_cap(base, t.flow, tiers, t.model_group, t.lane, 'user_cap_reached')
      return nil
    end
    local id, acc = pick_in_tier(base, now, 'shared', t, failed)
    if id then
      if failover_to_ppu(base, now, task_id, tkey, t, user) then return id, acc end
      return nil
    end
    tiers[#tiers + 1] = 'shared'
  end
  local reason, back_id, back_acc = wait_reason(base, now, task_id, t, tiers)
  if back_id then return back_id, back_acc end
  return wait_or_fail(base, now, task_id, tkey, t, tiers, reason, max_wait)
end
