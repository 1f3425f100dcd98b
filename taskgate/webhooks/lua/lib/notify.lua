-- Account notifications (§7): a state change of a user's own account is queued for the user's
-- notification endpoint through the webhook outbox (subject "account:<owner>"; one in flight per
-- owner, in order). Needs common.lua.
local function notify_owner(base, owner, event_json, now)
  if owner == 'shared' then return end
  local user_key = base .. ':user:' .. owner
  local endpoint = redis.call('HGET', user_key, 'notify_endpoint')
  if not endpoint or endpoint == '' then return end
  local seq = redis.call('HINCRBY', user_key, 'notify_seq', 1)
  local subject = 'account:' .. owner
  local delivery = subject .. ':' .. string.format('%012d', seq)
  redis.call('HSET', base .. ':webhook_delivery:' .. delivery, 'task_id', subject, 'seq', seq,
    'created_ms', now, 'attempts', 0, 'endpoint', endpoint,
    'secret', redis.call('HGET', user_key, 'notify_secret') or '', 'event', event_json)
  redis.call('ZADD', base .. ':webhook_outbox', now, delivery)
  local wake = base .. ':webhook_wake'  -- wake a blocked sender (as outbox.lua's webhook_wake)
  if redis.call('LLEN', wake) < 4 then redis.call('LPUSH', wake, '1') end
end
