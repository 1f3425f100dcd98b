-- Slot leases (S1, S2, §8). A slot is a member of a zset scored by its deadline (ms): the user's
-- PPU slots, the account's slots, the account's per-mode slots, and the global lease index the
-- reaper reads. Needs common.lua, flows.lua, avail.lua.

local function hold_slots(base, task_id, t, account, deadline)
  redis.call('ZADD', base .. ':leases', deadline, task_id)
  if t.pool == 'ppu' then redis.call('ZADD', base .. ':user_leases:' .. t.user, deadline, task_id) end
  redis.call('ZADD', base .. ':account_leases:' .. account, deadline, task_id)
  redis.call('ZADD', base .. ':account_mode_leases:' .. account .. ':' .. t.lane, deadline, task_id)
end

-- Move the deadline of every slot a task holds (they exist: XX) and of its lease.
local function extend_slots(base, task_id, t, deadline)
  redis.call('ZADD', base .. ':leases', 'XX', deadline, task_id)
  if t.pool == 'ppu' then redis.call('ZADD', base .. ':user_leases:' .. t.user, 'XX', deadline, task_id) end
  redis.call('ZADD', base .. ':account_leases:' .. t.account, 'XX', deadline, task_id)
  redis.call('ZADD', base .. ':account_mode_leases:' .. t.account .. ':' .. t.lane, 'XX', deadline, task_id)
  redis.call('HSET', base .. ':task:' .. task_id, 'lease_deadline', deadline)
end

-- Release every slot a task holds; idempotent. Wakes the flows that the freed slots unblock.
local function release_slots(base, task_id, t, now)
  redis.call('ZREM', base .. ':leases', task_id)
  if redis.call('ZREM', base .. ':user_leases:' .. t.user, task_id) == 1 then unpark_user(base, t.user) end
  local account = t.account or ''
  if account ~= '' then
    redis.call('ZREM', base .. ':account_leases:' .. account, task_id)
    redis.call('ZREM', base .. ':account_mode_leases:' .. account .. ':' .. t.lane, task_id)
    avail_refresh(base, account, now)
  end
  wake_scheduler(base)
end

-- The attempts that count toward max_attempts: every dispatch but those a worker handed back
-- unfinished (its watcher full, or a graceful shutdown), so busy or stopping workers never spend a
-- task's attempts.
local function attempts_spent(t)
  return num(t.attempt, 0) - num(t.handbacks, 0)
end

-- Put a task back at the head of its flow, to be dispatched again (a new attempt).
local function requeue_front(base, task_key, t)
  redis.call('HSET', task_key, 'status', 'pending', 'account', '', 'lease_deadline', '')
  redis.call('LPUSH', base .. ':flow:' .. t.flow, t.id)
  if t.lane == 'relax' then
    redis.call('ZADD', base .. ':relax_waiting', num(t.created_ms, 0), t.id)
  end
  flow_activate(base, t.flow)
end
