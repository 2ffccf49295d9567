package limits

// The Lua of the Redis scripts. Redis's Lua has only doubles, exact to
// 2^53, and a time in nanoseconds since 1970 is about 2^61; so a GCRA
// state, a theoretical arrival time, is stored as its decimal nanoseconds
// and handled in Lua as a pair of seconds and nanoseconds, and only
// differences from now (exact up to 2^53 ns, about 104 days) are plain
// numbers. Monthly counters change by INCRBY, which Redis does in 64-bit
// integers; they are compared in doubles, exact up to 2^53 micro-units of
// spend or tokens.
const luaCommon = `
local function split(v)
  local l = #v
  if l <= 9 then return 0, tonumber(v) end
  return tonumber(string.sub(v, 1, l - 9)), tonumber(string.sub(v, l - 8))
end
local function sub(as, an, bs, bn) return (as - bs) * 1e9 + (an - bn) end
local function add(s, n, d)
  local t = n + d
  local q = math.floor(t / 1e9)
  local r = t - q * 1e9
  if r < 0 then q = q - 1; r = r + 1e9 elseif r >= 1e9 then q = q + 1; r = r - 1e9 end
  s = s + q
  r = math.floor(r)
  if r < 0 then r = 0 elseif r > 999999999 then r = 999999999 end
  if s > 9223372036 or (s == 9223372036 and r > 854775807) then return 9223372036, 854775807 end
  return s, r
end
local function fmt(s, n)
  if s == 0 then return string.format('%d', n) end
  return string.format('%d%09d', s, n)
end
local function ttl(level) return math.max(math.floor(level / 1e6) + 1, 1) end
local now_s, now_n
if ARGV[1] == '' then
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  now_s, now_n = tonumber(t[1]), tonumber(t[2]) * 1000
else
  now_s, now_n = split(ARGV[1])
end
local seeded = ARGV[2] == '1'
`

// luaReserve evaluates every check and, only if all pass, takes every
// cost. ARGV: now ("" for the server's clock), seeded, the number of
// checks, then five per check: its head's index in KEYS, 1 for GCRA, the
// GCRA increment or the monthly cost, the GCRA burst or the monthly cap,
// and the month's end in nanoseconds. It answers the first refusing
// check's index (0 when allowed, minus the index of a monthly check whose
// counter is missing when seeded), the time it used, and the stored value
// of every key before the call ("" for none).
const luaReserve = luaCommon + `
local n = tonumber(ARGV[3])
local old, cs, cn, cur, dirty = {}, {}, {}, {}, {}
for h = 1, #KEYS do old[h] = redis.call('GET', KEYS[h]) or '' end
local denied = 0
for i = 1, n do
  local b = 3 + (i - 1) * 5
  local h, inc, cap = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  if ARGV[b + 2] == '1' then
    if cs[h] == nil then
      if old[h] == '' then cs[h], cn[h] = 0, 0 else cs[h], cn[h] = split(old[h]) end
    end
    local ts, tn = cs[h], cn[h]
    local level = math.max(sub(ts, tn, now_s, now_n), 0)
    if inc > 0 then
      if sub(ts, tn, now_s, now_n) < 0 then ts, tn = now_s, now_n end
      ts, tn = add(ts, tn, inc)
      level = sub(ts, tn, now_s, now_n)
    end
    if level <= cap then
      if inc > 0 then cs[h], cn[h], dirty[h] = ts, tn, true end
    elseif denied == 0 then denied = i end
  else
    if cur[h] == nil then
      if old[h] == '' then
        if seeded then return {-i, now_s, now_n} end
        cur[h] = 0
      else cur[h] = tonumber(old[h]) end
    end
    if cur[h] + inc <= cap then cur[h] = cur[h] + inc elseif denied == 0 then denied = i end
  end
end
if denied == 0 then
  for h = 1, #KEYS do
    if dirty[h] then
      redis.call('SET', KEYS[h], fmt(cs[h], cn[h]), 'PX', ttl(sub(cs[h], cn[h], now_s, now_n)))
    end
  end
  for i = 1, n do
    local b = 3 + (i - 1) * 5
    local h = tonumber(ARGV[b + 1])
    if ARGV[b + 2] ~= '1' and ARGV[b + 3] ~= '0' then
      local ok = redis.pcall('INCRBY', KEYS[h], ARGV[b + 3])
      if type(ok) == 'table' and ok.err then redis.call('SET', KEYS[h], '9223372036854775807') end
      local es, en = split(ARGV[b + 5])
      redis.call('PEXPIRE', KEYS[h], ttl(sub(es, en, now_s, now_n)))
    end
  end
end
local out = {denied, now_s, now_n}
for h = 1, #KEYS do out[#out + 1] = old[h] end
return out
`

// luaSettle corrects a settled reservation: ARGV: now, seeded, then three
// per key: the change ("g+" or "g-" for a GCRA debt or refund, "m+" or
// "m-" for a monthly counter), its amount (GCRA nanoseconds, or tokens or
// spend), and, for a monthly counter, the month's end in nanoseconds.
const luaSettle = luaCommon + `
for i = 1, #KEYS do
  local b = 2 + (i - 1) * 3
  local op, amt, k = ARGV[b + 1], ARGV[b + 2], KEYS[i]
  local v = redis.call('GET', k)
  if op == 'g-' then
    if v then
      local s, n = split(v)
      local level = sub(s, n, now_s, now_n) - tonumber(amt)
      if level <= 0 then redis.call('DEL', k) else
        s, n = add(now_s, now_n, level)
        redis.call('SET', k, fmt(s, n), 'PX', ttl(level))
      end
    end
  elseif op == 'g+' then
    local s, n = now_s, now_n
    if v then
      local vs, vn = split(v)
      if sub(vs, vn, now_s, now_n) > 0 then s, n = vs, vn end
    end
    s, n = add(s, n, tonumber(amt))
    redis.call('SET', k, fmt(s, n), 'PX', ttl(sub(s, n, now_s, now_n)))
  else
    local es, en = split(ARGV[b + 3])
    local left = sub(es, en, now_s, now_n)
    if left > 0 then
      if v then
        if op == 'm+' then
          local ok = redis.pcall('INCRBY', k, amt)
          if type(ok) == 'table' and ok.err then redis.call('SET', k, '9223372036854775807', 'KEEPTTL') end
        elseif redis.call('DECRBY', k, amt) < 0 then
          redis.call('SET', k, '0', 'KEEPTTL')
        end
      elseif op == 'm+' and not seeded then
        redis.call('SET', k, amt, 'PX', ttl(left))
      end
    end
  end
end
return 1
`
