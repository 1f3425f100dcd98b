-- Shared helpers included by every script: the clock, UTC days, hash reading.

-- One clock for every host: Redis TIME, or an override (ms) that tests pass to move time.
local function clock_ms(override)
  local o = tonumber(override)
  if o and o > 0 then return o end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- UTC civil date (YYYYMMDD) of a time in ms (H. Hinnant's days-to-civil).
local function utc_day(ms)
  local z = math.floor(ms / 86400000) + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format('%04d%02d%02d', y, m, d)
end

-- Start of the next UTC day, in ms.
local function next_day_ms(ms)
  return (math.floor(ms / 86400000) + 1) * 86400000
end

local function hash_map(key)
  local flat = redis.call('HGETALL', key)
  local m = {}
  for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
  return m
end

local function num(v, default)
  local n = tonumber(v)
  if n == nil then return default or 0 end
  return n
end

-- Split "a,b,c" into a list (empty string -> empty list).
local function split_csv(s)
  local out = {}
  if s == nil or s == '' then return out end
  for part in string.gmatch(s, '([^,]+)') do out[#out + 1] = part end
  return out
end
