-- record_delivery.lua: record one delivery attempt: done, retry later, or give up.
-- KEYS[1] outbox       zset delivery id -> due time (ms)
-- KEYS[2] sent_seq     hash task id -> highest status sequence delivered
-- KEYS[3] inflight     hash task id -> "<delivery id>|<claim deadline ms>"
-- KEYS[4] delivery     the delivery hash
-- KEYS[5] attempts     the task's list of attempt records (JSON, newest first)
-- ARGV[1] now          clock override in ms ("" = Redis TIME)
-- ARGV[2] delivery_id
-- ARGV[3] task_id
-- ARGV[4] result       delivered | retry | give_up
-- ARGV[5] sent_seq     the task's status_seq when the body was built (delivered only)
-- ARGV[6] retry_at_ms  when to try again (retry only)
-- ARGV[7] record       JSON of the attempt (status, latency_ms, error, at)
-- ARGV[8] base         Keys.base (optional): the task's newest delivery, held back behind this one,
--                      is made due at ARGV[1] (it waited only for this one to leave the air)
-- Returns: {0, attempts}
-- Errors: none

--- @include "store/lua/lib/common.lua"
--- @include "webhooks/lua/lib/outbox.lua"

local outbox, sent_seq, inflight, dkey, attempts_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local delivery, task_id, result = ARGV[2], ARGV[3], ARGV[4]

local attempts = redis.call('HINCRBY', dkey, 'attempts', 1)
redis.call('LPUSH', attempts_key, ARGV[7])
redis.call('LTRIM', attempts_key, 0, 99)
redis.call('EXPIRE', attempts_key, 30 * 86400)
local held = redis.call('HGET', inflight, task_id)
local released = held and string.sub(held, 1, #delivery + 1) == delivery .. '|'
if released then redis.call('HDEL', inflight, task_id) end
if result == 'delivered' then
  if tonumber(ARGV[5]) > num(redis.call('HGET', sent_seq, task_id), 0) then
    redis.call('HSET', sent_seq, task_id, ARGV[5])
  end
  redis.call('ZREM', outbox, delivery)
  redis.call('DEL', dkey)
elseif result == 'retry' then
  redis.call('ZADD', outbox, tonumber(ARGV[6]), delivery)
else
  redis.call('ZREM', outbox, delivery)
  redis.call('DEL', dkey)
end

-- claim_deliveries put a newer delivery of this task off (+1 s) while this one was in flight: now it
-- may go. Only one never attempted (a retry keeps its backoff); account notifications are left be.
local base = ARGV[8]
if released and base and base ~= '' and string.sub(task_id, 1, 8) ~= 'account:' then
  local seq = redis.call('HGET', base .. ':task:' .. task_id, 'status_seq')
  local newest = seq and (task_id .. ':' .. seq)
  local due = newest and newest ~= delivery and redis.call('ZSCORE', outbox, newest)
  local now = clock_ms(ARGV[1])
  if due and tonumber(due) > now
      and redis.call('HGET', base .. ':webhook_delivery:' .. newest, 'attempts') == '0' then
    redis.call('ZADD', outbox, now, newest)
    webhook_wake(base)
  end
end
return {0, attempts}
