-- Final settlement of a task (B2, B4-B6): status, times, money, counters, webhook; exactly once.
-- Needs common.lua, wallet.lua, outbox.lua.

local function settle_final(base, now, task_id, task_key, t, outcome, output, err)
  if t.settled == '1' then return end
  local daily = base .. ':daily:' .. t.user .. ':' .. utc_day(now)
  local frozen, charge, kind = num(t.frozen, 0), 0, 'charge'
  local ppu = t.pool == 'ppu'
  if outcome == 'completed' then
    charge = frozen
    if ppu and t.bonus == '1' then  -- B5: a successful fast/turbo imagine or blend earns a relax task
      redis.call('HINCRBY', daily, 'relax_bonus', 1)
      redis.call('EXPIRE', daily, DAILY_TTL_S)
    end
  elseif outcome == 'incorrect' and ppu then  -- B6
    local count = redis.call('HINCRBY', daily, 'incorrect', 1)
    redis.call('EXPIRE', daily, DAILY_TTL_S)
    local user = redis.call('HMGET', base .. ':user:' .. t.user, 'incorrect_penalty', 'incorrect_limit')
    if user[1] == 'no_refund' and count > num(user[2], 0) then
      charge, kind = frozen, 'penalty'
    end
  end
  if ppu then
    wallet_settle(base .. ':wallet:' .. t.user, base .. ':ledger:' .. t.user, t.user, task_id,
      t.unit, frozen, charge, kind, now)
  end
  local status = outcome == 'completed' and 'completed' or 'failed'
  redis.call('HSET', task_key, 'status', status, 'ended_ms', now, 'consume', charge, 'settled', 1,
    'outcome', outcome, 'lease_deadline', '')
  if output ~= '' then redis.call('HSET', task_key, 'output', output) end
  if err ~= '' then redis.call('HSET', task_key, 'error', err) end
  if status == 'completed' then redis.call('HSET', task_key, 'progress', 100) end
  outbox_push(base, task_key, task_id, now)
end
