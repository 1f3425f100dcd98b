-- Key builders for keys a script derives from the hash tag `base` (ARGV[1], "{<prefix>}") instead of
-- receiving them in KEYS: the same formats as taskgate/store/keys.py, method for method
-- (tests/lua/test_key_builders.py runs every builder and compares it with `Keys`).

local function key_of(base, name, ...)
  local parts = {base, name}
  for _, part in ipairs({...}) do parts[#parts + 1] = tostring(part) end
  return table.concat(parts, ':')
end

local K = {}
function K.user(base, user) return key_of(base, 'user', user) end
function K.users(base) return key_of(base, 'users') end
function K.api_key(base, digest) return key_of(base, 'apikey', digest) end
function K.user_api_keys(base, user) return key_of(base, 'user_apikeys', user) end
function K.user_tasks(base, user) return key_of(base, 'user_tasks', user) end
function K.wallet(base, user) return key_of(base, 'wallet', user) end
function K.ledger(base, user) return key_of(base, 'ledger', user) end
function K.daily(base, user, day) return key_of(base, 'daily', user, day) end
function K.task(base, task) return key_of(base, 'task', task) end
function K.task_failed_accounts(base, task) return key_of(base, 'task_failed', task) end
function K.flow(base, flow) return key_of(base, 'flow', flow) end
function K.ready(base, lane) return key_of(base, 'ready', lane) end
function K.sched(base) return key_of(base, 'sched') end
function K.parked_user(base, user) return key_of(base, 'parked_user', user) end
function K.parked_cap(base, tier, model, mode) return key_of(base, 'parked_cap', tier, model, mode) end
function K.flow_meta(base) return key_of(base, 'flow_meta') end
function K.relax_waiting(base) return key_of(base, 'relax_waiting') end
function K.user_leases(base, user) return key_of(base, 'user_leases', user) end
function K.leases(base) return key_of(base, 'leases') end
function K.sched_wake(base) return key_of(base, 'sched_wake') end
function K.account(base, account) return key_of(base, 'account', account) end
function K.owner_accounts(base, owner) return key_of(base, 'owner_accounts', owner) end
function K.account_leases(base, account) return key_of(base, 'account_leases', account) end
function K.account_mode_leases(base, account, mode) return key_of(base, 'account_mode_leases', account, mode) end
function K.account_daily(base, account, day) return key_of(base, 'account_daily', account, day) end
function K.cooldowns(base) return key_of(base, 'cooldowns') end
function K.byoa_waiting(base) return key_of(base, 'byoa_waiting') end
function K.avail(base, tier, model, mode) return key_of(base, 'avail', tier, model, mode) end
function K.account_events(base, owner) return key_of(base, 'account_events', owner) end
function K.webhook_outbox(base) return key_of(base, 'webhook_outbox') end
function K.webhook_wake(base) return key_of(base, 'webhook_wake') end
function K.webhook_delivery(base, delivery) return key_of(base, 'webhook_delivery', delivery) end
-- arq's job id for one attempt: inside the hash tag, so arq's keys built from it ("arq:job:<id>",
-- "arq:in-progress:<id>", "arq:retry:<id>", "arq:result:<id>") hash to the deployment's slot.
function K.arq_job_id(base, task, attempt) return key_of(base, task, attempt) end
