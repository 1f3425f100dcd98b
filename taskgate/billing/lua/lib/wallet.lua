-- Wallet movements (B1-B3, B7). Integers only. Every movement appends a ledger entry with the
-- balances after. Fields of a wallet hash, per unit U: U:available, U:frozen, U:consumed,
-- U:deposited (initial + top-ups + adjustments), U:converted_in, U:converted_out. For each unit:
-- deposited + converted_in = available + frozen + consumed + converted_out.

local function wallet_balance(wallet, unit, field)
  return num(redis.call('HGET', wallet, unit .. ':' .. field), 0)
end

-- Apply deltas to one unit and append a ledger entry. deltas: {available=, frozen=, consumed=, ...}
local function wallet_move(wallet, ledger, user, task, unit, kind, deltas, now, reason)
  for field, delta in pairs(deltas) do
    if delta ~= 0 then redis.call('HINCRBY', wallet, unit .. ':' .. field, delta) end
  end
  local amount = deltas.available or 0
  if kind == 'charge' or kind == 'penalty' then amount = deltas.consumed or 0 end
  if kind == 'freeze' then amount = deltas.frozen or 0 end
  redis.call('XADD', ledger, '*',
    'ts', tostring(now), 'task', task or '', 'user', user, 'unit', unit, 'kind', kind,
    'amount', tostring(amount), 'reason', reason or '',
    'available', tostring(wallet_balance(wallet, unit, 'available')),
    'frozen', tostring(wallet_balance(wallet, unit, 'frozen')),
    'consumed', tostring(wallet_balance(wallet, unit, 'consumed')))
end

-- B7: with under 100 mj_quota available, convert 2100 credits (else 700, else none) at
-- 700 credits = 200 quota. Returns the credits converted (0 when none).
local MJ_LOW, CONVERT_STEPS, QUOTA_PER_700 = 100, {2100, 700}, 200
local function maybe_convert_mj(wallet, ledger, user, task, now)
  if wallet_balance(wallet, 'mj_quota', 'available') >= MJ_LOW then return 0 end
  local credits = wallet_balance(wallet, 'credits', 'available')
  for _, step in ipairs(CONVERT_STEPS) do
    if credits >= step then
      local quota = step / 700 * QUOTA_PER_700
      wallet_move(wallet, ledger, user, task, 'credits', 'convert_out',
        {available = -step, converted_out = step}, now, 'auto conversion to mj_quota')
      wallet_move(wallet, ledger, user, task, 'mj_quota', 'convert_in',
        {available = quota, converted_in = quota}, now, 'auto conversion from credits')
      return step
    end
  end
  return 0
end

-- Freeze amount of unit. Returns (true) or (false, available) when not enough; writes nothing then.
local function wallet_freeze(wallet, ledger, user, task, unit, amount, now)
  if amount <= 0 then return true end
  if unit == 'mj_quota' then
    local q = wallet_balance(wallet, 'mj_quota', 'available')
    -- convert only when the freeze can then succeed, so a refused task changes nothing
    local credits = wallet_balance(wallet, 'credits', 'available')
    if q < MJ_LOW and (credits >= 700) and q + QUOTA_PER_700 >= amount then
      maybe_convert_mj(wallet, ledger, user, task, now)
    end
  end
  local available = wallet_balance(wallet, unit, 'available')
  if available < amount then return false, available end
  wallet_move(wallet, ledger, user, task, unit, 'freeze', {available = -amount, frozen = amount}, now)
  return true
end

-- Settle a frozen amount: consume `charge` of it and refund the rest.
local function wallet_settle(wallet, ledger, user, task, unit, frozen, charge, kind, now)
  if frozen <= 0 then return end
  if charge > 0 then
    wallet_move(wallet, ledger, user, task, unit, kind, {frozen = -charge, consumed = charge}, now)
  end
  local refund = frozen - charge
  if refund > 0 then
    wallet_move(wallet, ledger, user, task, unit, 'refund', {frozen = -refund, available = refund}, now)
  end
end

-- B5: the price of a relax task given the day's use: double past the plan's limit + bonus.
local function relax_price(daily, user, price)
  local allowance = num(user.relax_limit, 0) + num(redis.call('HGET', daily, 'relax_bonus'), 0)
  local over = num(redis.call('HGET', daily, 'relax_used'), 0) >= allowance
  if over then return price * 2, true end
  return price, false
end

local DAILY_TTL_S = 2 * 86400
local function count_relax(daily)
  redis.call('HINCRBY', daily, 'relax_used', 1)
  redis.call('EXPIRE', daily, DAILY_TTL_S)
end
