-- count_pending.lua: pending tasks per lane/pool/plan and the oldest task per lane, over one chunk
-- of flows (the caller lists flow_meta once and passes it in chunks, so no call blocks Redis for
-- long). Per flow: its length and its head (a flow's oldest task); never a scan over tasks.
-- KEYS[1] flow_meta  hash of every non-empty flow (routes the call to the deployment's slot)
-- ARGV[1] base       Keys.base
-- ARGV[2..] flows    flow ids ("<lane>|<pool>|<user>|<model>|<bot>")
-- Returns: {0, json} with pending {"lane|pool|plan": n} and oldest {lane: created_ms}
-- Errors: none

--- @include "store/lua/lib/common.lua"

local base = ARGV[1]
local plans, pending, oldest = {}, {}, {}

for i = 2, #ARGV do
  local flow = ARGV[i]
  local p = {}
  for part in string.gmatch(flow .. '|', '([^|]*)|') do p[#p + 1] = part end
  local fkey = base .. ':flow:' .. flow
  local n = redis.call('LLEN', fkey)
  if n > 0 and p[3] then
    local user = p[3]
    if plans[user] == nil then plans[user] = redis.call('HGET', base .. ':user:' .. user, 'plan') or '' end
    local label = p[1] .. '|' .. p[2] .. '|' .. plans[user]
    pending[label] = (pending[label] or 0) + n
    local created = num(redis.call('HGET', base .. ':task:' .. redis.call('LINDEX', fkey, 0), 'created_ms'), 0)
    if created > 0 and (oldest[p[1]] == nil or created < oldest[p[1]]) then oldest[p[1]] = created end
  end
end

return {0, cjson.encode({pending = pending, oldest = oldest})}
