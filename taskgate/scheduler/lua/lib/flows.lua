-- Flows and the ready structure (S4, S5). A flow is one user's FIFO of waiting tasks sharing
-- lane, pool, model and pin: "<lane>|<pool>|<user>|<model>|<bot>". A non-empty flow is in exactly
-- one place: ready:<lane> (a zset scored by virtual pass), parked_user:<user> (user at its cap), or
-- parked_cap sets (no account with room). flow_meta[flow] says which ('r', 'u', 'c'); absent =
-- idle; flow_wait[flow] says why a parked flow waits (S10). A task that cannot run for reasons of
-- its own (the accounts it failed on) is set aside instead: out of its flow, in the parked_task
-- sets of its tiers, so it never holds back the tasks behind it. Needs common.lua.

local function flow_parts(flow)
  local p = {}
  for part in string.gmatch(flow .. '|', '([^|]*)|') do p[#p + 1] = part end
  return {lane = p[1], pool = p[2], user = p[3], model = p[4], bot = p[5] or ''}
end

-- Put a flow on its ready lane at the lane's current virtual time (unless it is there already):
-- a flow that was idle or parked joins the rotation now, with no credit for the time it waited.
local function flow_make_ready(base, flow)
  local lane = flow_parts(flow).lane
  local vtime = num(redis.call('HGET', base .. ':sched', 'vtime:' .. lane), 0)
  redis.call('ZADD', base .. ':ready:' .. lane, 'NX', vtime, flow)
  redis.call('HSET', base .. ':flow_meta', flow, 'r')
  redis.call('HDEL', base .. ':flow_wait', flow)
end

-- A flow with no tasks left goes idle.
local function flow_idle(base, flow)
  redis.call('HDEL', base .. ':flow_meta', flow)
  redis.call('HDEL', base .. ':flow_wait', flow)
end

-- Wake a parked flow (its blocker went away). Empty flows go idle.
local function flow_wake(base, flow)
  if redis.call('LLEN', base .. ':flow:' .. flow) == 0 then
    flow_idle(base, flow)
    return
  end
  if redis.call('HGET', base .. ':flow_meta', flow) == 'r' then return end
  flow_make_ready(base, flow)
end

-- A task was appended to a flow: an idle flow becomes ready; a parked flow stays parked.
local function flow_activate(base, flow)
  if redis.call('HGET', base .. ':flow_meta', flow) == false then flow_make_ready(base, flow) end
end

local function flow_park_user(base, flow, user)
  redis.call('ZREM', base .. ':ready:' .. flow_parts(flow).lane, flow)
  redis.call('SADD', base .. ':parked_user:' .. user, flow)
  redis.call('HSET', base .. ':flow_meta', flow, 'u')
  redis.call('HSET', base .. ':flow_wait', flow, 'user_cap_reached')
end

-- Park a flow until an account of one of the tiers serving model/mode has room; `reason` is the
-- wait reason its tasks show (S10).
local function flow_park_cap(base, flow, tiers, model, mode, reason)
  redis.call('ZREM', base .. ':ready:' .. flow_parts(flow).lane, flow)
  for _, tier in ipairs(tiers) do
    redis.call('SADD', base .. ':parked_cap:' .. tier .. ':' .. model .. ':' .. mode, flow)
  end
  redis.call('HSET', base .. ':flow_meta', flow, 'c')
  redis.call('HSET', base .. ':flow_wait', flow, reason or 'waiting_for_capacity')
end

-- Set the task at the head of its flow aside (S10): it waits on its own, woken with the flows
-- parked on its tiers, so the tasks behind it are not held back by its exclusions.
local function task_set_aside(base, task_id, t, tiers, reason)
  redis.call('LPOP', base .. ':flow:' .. t.flow)
  redis.call('HSET', base .. ':task:' .. task_id, 'aside', 1, 'wait', reason)
  redis.call('SADD', base .. ':tasks_aside', task_id)
  for _, tier in ipairs(tiers) do
    redis.call('SADD', base .. ':parked_task:' .. tier .. ':' .. t.model_group .. ':' .. t.lane, task_id)
  end
end

local function wake_scheduler(base)
  local key = base .. ':sched_wake'
  if redis.call('LLEN', key) < 4 then redis.call('LPUSH', key, '1') end
end

-- Put a set-aside task back at the head of its flow (idempotent; ended tasks are skipped).
local function task_return(base, task_id)
  local tkey = base .. ':task:' .. task_id
  local v = redis.call('HMGET', tkey, 'status', 'aside', 'flow')
  redis.call('SREM', base .. ':tasks_aside', task_id)
  if v[1] ~= 'pending' or v[2] ~= '1' then return end
  redis.call('HSET', tkey, 'aside', 0)
  redis.call('LPUSH', base .. ':flow:' .. v[3], task_id)
  flow_wake(base, v[3])
end

-- Return every task set aside on one tier/model/mode and wake the scheduler.
local function unpark_tasks(base, key)
  local ids = redis.call('SMEMBERS', key)
  if #ids == 0 then return end
  redis.call('DEL', key)
  for _, id in ipairs(ids) do task_return(base, id) end
  wake_scheduler(base)
end

-- Wake every flow parked in one set (a user's, or a tier/model/mode's) and the scheduler.
local function unpark_set(base, key)
  local flows = redis.call('SMEMBERS', key)
  if #flows == 0 then return end
  redis.call('DEL', key)
  for _, flow in ipairs(flows) do flow_wake(base, flow) end
  wake_scheduler(base)
end

local function unpark_user(base, user)
  unpark_set(base, base .. ':parked_user:' .. user)
end
