-- claim_deliveries.lua: claim due webhook deliveries, at most one in flight per task (§7 order).
-- KEYS[1] outbox       zset delivery id -> due time (ms)
-- KEYS[2] sent_seq     hash task id -> highest status sequence delivered
-- KEYS[3] inflight     hash task id -> "<delivery id>|<claim deadline ms>"
-- ARGV[1] base         Keys.base
-- ARGV[2] now          clock override in ms ("" = Redis TIME)
-- ARGV[3] limit        most deliveries claimed
-- ARGV[4] claim_ms     how long a claim lasts (a crashed sender's claim expires, so it is retried)
-- Returns: {0, now, delivery_id_1, task_id_1, attempts_1, ...}
-- Errors: none (deliveries already superseded by a newer successful one are dropped)

--- @include "store/lua/lib/common.lua"

local outbox, sent_seq, inflight = KEYS[1], KEYS[2], KEYS[3]
local base, limit, claim_ms = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = clock_ms(ARGV[2])

local out = {0, now}
for _, delivery in ipairs(redis.call('ZRANGEBYSCORE', outbox, '-inf', now, 'LIMIT', 0, limit * 4)) do
  if (#out - 2) / 3 >= limit then break end
  local dkey = base .. ':webhook_delivery:' .. delivery
  local d = hash_map(dkey)
  local task_id = d.task_id
  if task_id == nil or num(d.seq, 0) <= num(redis.call('HGET', sent_seq, task_id), 0) then
    redis.call('ZREM', outbox, delivery)  -- gone, or a newer state was already delivered
    redis.call('DEL', dkey)
  else
    local held = redis.call('HGET', inflight, task_id)
    local busy = false
    if held then
      local sep = string.find(held, '|', 1, true)
      busy = string.sub(held, 1, sep - 1) ~= delivery and num(string.sub(held, sep + 1), 0) > now
    end
    if busy then
      redis.call('ZADD', outbox, now + 1000, delivery)  -- after the task's delivery in flight
    else
      redis.call('HSET', inflight, task_id, delivery .. '|' .. (now + claim_ms))
      redis.call('ZADD', outbox, now + claim_ms, delivery)
      out[#out + 1], out[#out + 2], out[#out + 3] = delivery, task_id, num(d.attempts, 0)
    end
  end
end
return out
