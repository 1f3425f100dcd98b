-- read_cluster.lua: the bounded part of the cluster snapshot for /metrics and the dashboard, in
-- one read-only call: running tasks by plan and pool, every account's slots and state, the webhook
-- backlog. Cost: O(running tasks + accounts), both bounded by the pool's capacity. The queues
-- (O(flows)) and wallets (O(users)) are read by the caller with chunked pipelines instead, so a
-- scrape never blocks Redis for long.
-- KEYS[1] leases     zset of live leases: task id -> deadline (ms)
-- KEYS[2] accounts   set of every account id
-- KEYS[3] outbox     zset of webhook deliveries: delivery id -> due time (ms)
-- ARGV[1] base       Keys.base
-- ARGV[2] now        clock override in ms ("" = Redis TIME)
-- Returns: {0, json} with now_ms, running {"plan|pool": n},
--   accounts [{id, owner, state, reason, running, capacity, errors}], webhook_backlog,
--   webhook_oldest_due_ms
-- Errors: none

--- @include "store/lua/lib/common.lua"

local leases, accounts_key, outbox = KEYS[1], KEYS[2], KEYS[3]
local base = ARGV[1]
local now = clock_ms(ARGV[2])

local plans = {}
local function plan_of(user)
  if plans[user] == nil then plans[user] = redis.call('HGET', base .. ':user:' .. user, 'plan') or '' end
  return plans[user]
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

local first = redis.call('ZRANGE', outbox, 0, 0, 'WITHSCORES')
return {0, cjson.encode({
  now_ms = now, running = running, accounts = accounts,
  webhook_backlog = redis.call('ZCARD', outbox), webhook_oldest_due_ms = num(first[2], 0),
})}
