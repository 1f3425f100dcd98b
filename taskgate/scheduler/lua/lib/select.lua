-- Account selection for the task at the head of a flow (S1, S2, S6, S8). Returns the chosen
-- account id and its hash, or nil after parking the flow (or failing the task when it can never run).
-- Needs common.lua, flows.lua, avail.lua, wallet.lua, outbox.lua.

local function user_at_cap(base, t, user)
  return redis.call('ZCARD', base .. ':user_leases:' .. t.user) >= num(user.cap, 0)
end

local function account_serves(acc, t)
  local serves_model = string.find(',' .. (acc.models or '') .. ',', ',' .. t.model_group .. ',', 1, true)
  local serves_mode = string.find(',' .. (acc.modes or '') .. ',', ',' .. t.lane .. ',', 1, true)
  return serves_model ~= nil and serves_mode ~= nil
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

-- End a task that is still at the head of its flow (it never ran): failed, refunded, notified.
local function fail_waiting(base, now, task_id, tkey, t, code, message)
  redis.call('LPOP', base .. ':flow:' .. t.flow)
  redis.call('ZREM', base .. ':relax_waiting', task_id)
  if t.pool == 'ppu' and num(t.frozen, 0) > 0 and t.settled ~= '1' then
    wallet_settle(base .. ':wallet:' .. t.user, base .. ':ledger:' .. t.user, t.user, task_id,
      t.unit, num(t.frozen, 0), 0, 'charge', now)
  end
  redis.call('HSET', tkey, 'status', 'failed', 'ended_ms', now, 'settled', 1,
    'error', cjson.encode({code = code, message = message, raw_message = message}))
  outbox_push(base, tkey, task_id, now)
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

-- Why a task waits (S10), from the accounts of the owners behind `tiers` that serve its model and
-- mode: 'waiting_for_capacity' (one it may use is usable but busy), 'only_excluded_accounts_left'
-- (only accounts it failed on are usable; also returns one of them with room: the task goes back
-- to it, within the attempt limit), 'all_accounts_cooling_down' (a running cooldown will end), or
-- 'no_account_serves_model_mode' (none now, none after a cooldown).
local function wait_reason(base, now, task_id, t, tiers)
  local failed = base .. ':task_failed:' .. task_id
  local owners, busy, excluded, cooling, back_id, back_acc = {}, false, false, false, nil, nil
  for _, tier in ipairs(tiers) do owners[(string.gsub(tier, '#backup$', ''))] = true end
  for owner in pairs(owners) do
    for _, id in ipairs(redis.call('SMEMBERS', base .. ':owner_accounts:' .. owner)) do
      local acc = hash_map(base .. ':account:' .. id)
      if acc.id ~= nil and account_serves(acc, t) then
        if not account_usable(base, id, acc, now) then
          cooling = cooling or acc.state == 'cooling_down'
        elseif redis.call('SISMEMBER', failed, id) == 0 then
          busy = true
        else
          excluded = true
          if back_id == nil and account_free(base, id, acc, t.lane) > 0 then back_id, back_acc = id, acc end
        end
      end
    end
  end
  if busy then return 'waiting_for_capacity' end
  if excluded then return 'only_excluded_accounts_left', back_id, back_acc end
  if cooling then return 'all_accounts_cooling_down' end
  return 'no_account_serves_model_mode'
end

-- The task waits with `reason`, or fails once it waited max_wait with no account able to serve it
-- now or after a running cooldown (S10, B2: refunded). A task stopped by its own exclusions is set
-- aside; otherwise its whole flow (which shares its lane, pool, model and pin) is parked.
local function wait_or_fail(base, now, task_id, tkey, t, tiers, reason, max_wait)
  if reason == 'no_account_serves_model_mode' then
    local since = math.max(num(t.created_ms, 0), num(t.dispatched_ms, 0))
    if now - since >= max_wait then
      fail_waiting(base, now, task_id, tkey, t, 503, 'no account could serve ' .. t.model_group .. ' ' .. t.lane ..
        ' within ' .. math.floor(max_wait / 1000) .. ' s (none active or cooling down); refunded')
      return nil
    end
    redis.call('ZADD', base .. ':pending_deadlines', since + max_wait, task_id)
  end
  if redis.call('EXISTS', base .. ':task_failed:' .. task_id) == 1 then
    task_set_aside(base, task_id, t, tiers, reason)
  else
    flow_park_cap(base, t.flow, tiers, t.model_group, t.lane, reason)
  end
  return nil
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
