"""Billing: prices (``pricing``), the B8 prompt checker (``prompt_check``) and wallets (freeze, charge,
refund through Lua) for the rules of DESIGN.md §6."""
