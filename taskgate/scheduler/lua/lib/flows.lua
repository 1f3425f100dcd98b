-- Flows and the ready structure (S4, S5). A flow is one user's FIFO of waiting tasks sharing
-- lane, pool, model and pin: "<lane>|<pool>|<user>|<model>|<bot>". A non-empty flow is in exactly
-- one place: ready:<lane> (a zset scored by virtual pass), parked_user:<user> (user at its cap), or
-- parked_cap sets (no account with room). flow_meta[flow] says which ('r', 'u', 'c'); absent =
-- idle. Needs common.lua.

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
end

-- Wake a parked flow (its blocker went away). Empty flows go idle.
local function flow_wake(base, flow)
  if redis.call('LLEN', base .. ':flow:' .. flow) == 0 then
    redis.call('HDEL', base .. ':flow_meta', flow)
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
end

-- Park a flow until an account of one of the tiers serving model/mode has room.
local function flow_park_cap(base, flow, tiers, model, mode)
  redis.call('ZREM', base .. ':ready:' .. flow_parts(flow).lane, flow)
  for _, tier in ipairs(tiers) do
    redis.call('SADD', base .. ':parked_cap:' .. tier .. ':' .. model .. ':' .. mode, flow)
  end
  redis.call('HSET', base .. ':flow_meta', flow, 'c')
end

local function wake_scheduler(base)
  local key = base .. ':sched_wake'
  if redis.call('LLEN', key) < 4 then redis.call('LPUSH', key, '1') end
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
