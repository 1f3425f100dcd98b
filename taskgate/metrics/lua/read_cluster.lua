-- read_cluster.lua: read-only snapshot of the cluster for /metrics and the dashboard, in one call.
-- Cost: O(non-empty flows + running tasks + accounts + users); never a scan over queued tasks.
-- KEYS[1] flow_meta  hash flow -> place; every non-empty flow is in it
-- KEYS[2] leases     zset of live leases: task id -> deadline (ms)
-- KEYS[3] accounts   set of every account id
-- KEYS[4] users      set of every user id
-- KEYS[5] outbox     zset of webhook deliveries: delivery id -> due time (ms)
-- ARGV[1] base       Keys.base
-- ARGV[2] now        clock override in ms ("" = Redis TIME)
-- Returns: {0, json} with now_ms, pending {"lane|pool|plan": n}, oldest {lane: created_ms},
--   running {"plan|pool": n}, accounts [{id, owner, state, reason, running, capacity, errors}],
--   webhook_backlog, webhook_oldest_due_ms, frozen {unit: n}
-- Errors: none

--- @include "store/lua/lib/common.lua"

local flow_meta, leases, accounts_key, users_key, outbox = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local base = ARGV[1]
local now = clock_ms(ARGV[2])

local plans = {}
local function plan_of(user)
  if plans[user] == nil then plans[user] = redis.call('HGET', base .. ':user:' .. user, 'plan') or '' end
  return plans[user]
end

-- pending tasks per lane/pool/plan and the oldest waiting task per lane (a flow's head is its oldest)
local pending, oldest = {}, {}
local flows = redis.call('HKEYS', flow_meta)
for _, flow in ipairs(flows) do
  local p = {}
  for part in string.gmatch(flow .. '|', '([^|]*)|') do p[#p + 1] = part end
  local fkey = base .. ':flow:' .. flow
  local n = redis.call('LLEN', fkey)
  if n > 0 then
    local label = p[1] .. '|' .. p[2] .. '|' .. plan_of(p[3])
    pending[label] = (pending[label] or 0) + n
    local head = redis.call('LINDEX', fkey, 0)
    local created = num(redis.call('HGET', base .. ':task:' .. head, 'created_ms'), 0)
    if created > 0 and (oldest[p[1]] == nil or created < oldest[p[1]]) then oldest[p[1]] = created end
  end
end

-- running tasks per plan and pool (every running task holds one lease)
local running = {}
for _, task_id in ipairs(redis.call('ZRANGE', leases, 0, -1)) do
  local t = redis.call('HMGET', base .. ':task:' .. task_id, 'user', 'pool')
  if t[1] then
    local label = plan_of(t[1]) .. '|' .. (t[2] or '')
    running[label] = (running[label] or 0) + 1
  end
end

local accounts = {}
for _, id in ipairs(redis.call('SMEMBERS', accounts_key)) do
  local a = redis.call('HMGET', base .. ':account:' .. id, 'owner', 'state', 'state_reason', 'capacity')
  accounts[#accounts + 1] = {
    id = id, owner = a[1] or '', state = a[2] or '', reason = a[3] or '', capacity = num(a[4], 0),
    running = redis.call('ZCARD', base .. ':account_leases:' .. id),
    errors = redis.call('ZCARD', base .. ':account_failures:' .. id),
  }
end

-- frozen balances per unit (wallet fields are "<unit>:frozen")
local frozen = {}
for _, user in ipairs(redis.call('SMEMBERS', users_key)) do
  local w = redis.call('HGETALL', base .. ':wallet:' .. user)
  for i = 1, #w, 2 do
    local unit = string.match(w[i], '^(.*):frozen$')
    if unit then frozen[unit] = (frozen[unit] or 0) + num(w[i + 1], 0) end
  end
end

local first = redis.call('ZRANGE', outbox, 0, 0, 'WITHSCORES')
return {0, cjson.encode({
  now_ms = now, pending = pending, oldest = oldest, running = running, accounts = accounts,
  frozen = frozen, webhook_backlog = redis.call('ZCARD', outbox),
  webhook_oldest_due_ms = num(first[2], 0),
})}
