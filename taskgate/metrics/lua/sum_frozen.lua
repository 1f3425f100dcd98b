-- sum_frozen.lua: frozen wallet balances per unit over one chunk of users (wallet fields are
-- "<unit>:frozen"); the caller lists the users once and passes them in chunks.
-- KEYS[1] users      set of every user id (routes the call to the deployment's slot)
-- ARGV[1] base       Keys.base
-- ARGV[2..] user_ids user ids
-- Returns: {0, json} with frozen {unit: n}
-- Errors: none

local base = ARGV[1]
local frozen = {}

for i = 2, #ARGV do
  local w = redis.call('HGETALL', base .. ':wallet:' .. ARGV[i])
  for j = 1, #w, 2 do
    local unit = string.match(w[j], '^(.*):frozen$')
    if unit then frozen[unit] = (frozen[unit] or 0) + tonumber(w[j + 1]) end
  end
end

return {0, cjson.encode({frozen = frozen})}
