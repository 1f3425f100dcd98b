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
  local after = redis.call('HMGET', wallet, unit .. ':available', unit .. ':frozen', unit .. ':consumed')
  redis.call('XADD', ledger, '*',
    'ts', tostring(now), 'task', task or '', 'user', user, 'unit', unit, 'kind', kind,
    'amount', tostring(amount), 'reason', reason or '',
    'available', tostring(num(after[1], 0)),
    'frozen', tostring(num(after[2], 0)),
    'consumed', tostring(num(after[3], 0)))
end

-- B7 (docs/rules.md#b7): the catalogue's [auto_convert] rules, written here when the scripts load.
--- @catalogue auto_convert

-- The conversion that applies before freezing `unit`: (rule, from amount, unit amount), or nil when
-- the unit is not under its threshold or the wallet holds none of the rule's amounts.
local function conversion_for(wallet, unit)
  local rule = AUTO_CONVERT[unit]
  if rule == nil or wallet_balance(wallet, unit, 'available') >= rule.below then return nil end
  local have = wallet_balance(wallet, rule.from_unit, 'available')
  for _, step in ipairs(rule.attempts) do
    if have >= step then return rule, step, math.floor(step * rule.num / rule.den) end
  end
  return nil
end

-- Freeze amount of unit. Returns (true) or (false, available) when not enough; writes nothing then.
local function wallet_freeze(wallet, ledger, user, task, unit, amount, now)
  if amount <= 0 then return true end
  local rule, paid, bought = conversion_for(wallet, unit)
  -- convert only when the freeze can then succeed, so a refused task changes nothing
  if rule and wallet_balance(wallet, unit, 'available') + bought >= amount then
    wallet_move(wallet, ledger, user, task, rule.from_unit, 'convert_out',
      {available = -paid, converted_out = paid}, now, 'auto conversion to ' .. unit)
    wallet_move(wallet, ledger, user, task, unit, 'convert_in',
      {available = bought, converted_in = bought}, now, 'auto conversion from ' .. rule.from_unit)
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
