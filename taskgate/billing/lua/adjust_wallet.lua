-- adjust_wallet.lua: an operator's top-up or adjustment of one wallet unit, with a ledger entry.
-- KEYS[1] wallet       the user's wallet hash
-- KEYS[2] ledger       the user's ledger stream
-- ARGV[1] now          clock override in ms ("" = Redis TIME)
-- ARGV[2] user_id
-- ARGV[3] unit
-- ARGV[4] amount       integer; negative takes away (never below zero available)
-- ARGV[5] kind         top_up | adjust
-- ARGV[6] reason       free text recorded in the ledger
-- Returns: {0, available, frozen, consumed}
-- Errors: {-3, unit, needed, available} a negative adjustment larger than the available balance

--- @include "store/lua/lib/common.lua"
--- @include "billing/lua/lib/wallet.lua"

local wallet, ledger = KEYS[1], KEYS[2]
local user, unit, amount, kind, reason = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local now = clock_ms(ARGV[1])

local available = wallet_balance(wallet, unit, 'available')
if available + amount < 0 then return {-3, unit, -amount, available} end
wallet_move(wallet, ledger, user, '', unit, kind, {available = amount, deposited = amount}, now, reason)
return {0, wallet_balance(wallet, unit, 'available'), wallet_balance(wallet, unit, 'frozen'),
  wallet_balance(wallet, unit, 'consumed')}
