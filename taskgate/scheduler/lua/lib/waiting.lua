-- Waiting tasks (S10): why a task waits, and the end of one that nothing can serve. Needs
-- common.lua, flows.lua, avail.lua, wallet.lua, outbox.lua.

local function account_serves(acc, t)
  local serves_model = string.find(',' .. (acc.models or '') .. ',', ',' .. t.model_group .. ',', 1, true)
  local serves_mode = string.find(',' .. (acc.modes or '') .. ',', ',' .. t.lane .. ',', 1, true)
  return serves_model ~= nil and serves_mode ~= nil
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
