-- querystring: Node's querystring module (also the global `querystring`).
--
--   querystring.parse("a=1&b=x+y&a=2")   --> { a = { "1", "2" }, b = "x y" }
--   querystring.stringify({ b = { 1, true }, a = "x y" })  --> "a=x%20y&b=1&b=true"
--
-- parse(s[, sep][, eq][, options]): a repeated key becomes a list of its
-- values in order; "+" is a space; a malformed % escape is kept as it is;
-- at most options.maxKeys pairs (1000; 0 for no limit) are read; a custom
-- options.decodeURIComponent(s) may replace unescape.
-- stringify(obj[, sep][, eq][, options]): keys in sorted order (Lua tables
-- have none of their own, and sorted output is the same every time); a
-- list repeats its key; numbers as JavaScript writes them, booleans as
-- "true"/"false", anything else as an empty value; an empty list adds
-- nothing. options.encodeURIComponent may replace escape.
-- escape(s): percent-encodes every byte but A-Z a-z 0-9 - _ . ! ~ * ' ( ),
-- as encodeURIComponent does with UTF-8; unescape(s) undoes it, leaving
-- malformed escapes (and "+") alone.

local byte, char, find, format, gsub, sub = string.byte, string.char,
  string.find, string.format, string.gsub, string.sub
local concat, sort = table.concat, table.sort
local type, tostring, tonumber, pairs, ipairs, pcall, error, setmetatable =
  type, tostring, tonumber, pairs, ipairs, pcall, error, setmetatable
local floor, huge = math.floor, math.huge

local querystring = {}

-- Escapes and unescapes by table lookup; entries are made on first use,
-- so loading the module (at every process start) costs nothing.
local ESCAPE = setmetatable({}, { __index = function(t, c)
  local e = format("%%%02X", byte(c))
  t[c] = e
  return e
end })
local UNESCAPE = setmetatable({}, { __index = function(t, e)
  local c = char(tonumber(sub(e, 2), 16))
  t[e] = c
  return c
end })

-- A number the way JavaScript's String(n) writes it (shortest digits that
-- read back the same; exponent form below 1e-6 and from 1e21); nil for
-- NaN and infinities.
local function number_string(n)
  if n ~= n or n == huge or n == -huge then return nil end
  if n == 0 then return "0" end
  if n == floor(n) and n > -1e21 and n < 1e21 then return format("%.0f", n) end
  local s
  for precision = 0, 16 do
    s = format("%." .. precision .. "e", n)
    if tonumber(s) == n then break end
  end
  local sign, lead, tail, exp = s:match("^(-?)(%d)%.?(%d*)e([-+]%d+)$")
  local digits = (lead .. tail):gsub("0+$", "")
  local k, point = #digits, tonumber(exp) + 1
  local out
  if point > 0 and point <= 21 then
    out = k <= point and digits .. ("0"):rep(point - k)
      or sub(digits, 1, point) .. "." .. sub(digits, point + 1)
  elseif point > -6 and point <= 0 then
    out = "0." .. ("0"):rep(-point) .. digits
  else
    out = sub(digits, 1, 1) .. (k > 1 and "." .. sub(digits, 2) or "")
      .. (point > 0 and "e+" or "e-") .. (point > 0 and point - 1 or 1 - point)
  end
  return sign .. out
end

function querystring.escape(s)
  local t = type(s)
  if t == "number" then
    s = number_string(s) or tostring(s)
  elseif t == "boolean" then
    s = tostring(s)
  elseif t ~= "string" then
    error("bad argument #1 to 'escape' (string expected, got " .. t .. ")", 2)
  end
  return (gsub(s, "[^A-Za-z0-9%-_%.!~%*'%(%)]", ESCAPE))
end

function querystring.unescape(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'unescape' (string expected, got " .. type(s) .. ")", 2)
  end
  return (gsub(s, "%%%x%x", UNESCAPE))
end

local escape, unescape = querystring.escape, querystring.unescape

-- Decodes one key or value of a query string: "+" is a space.
local function decoder(custom)
  if not custom then
    return function(s)
      if find(s, "+", 1, true) then s = gsub(s, "%+", " ") end
      if find(s, "%", 1, true) then s = gsub(s, "%%%x%x", UNESCAPE) end
      return s
    end
  end
  return function(s)
    if s == "" then return s end
    s = gsub(s, "%+", "%%20")
    local ok, r = pcall(custom, s)
    if ok and type(r) == "string" then return r end
    return unescape(s)
  end
end

local function add(obj, key, value)
  local old = obj[key]
  if old == nil then
    obj[key] = value
  elseif type(old) == "table" then
    old[#old + 1] = value
  else
    obj[key] = { old, value }
  end
end

function querystring.parse(s, sep, eq, options)
  local obj = {}
  if type(s) ~= "string" or s == "" then return obj end
  sep = (sep == nil or sep == "") and "&" or tostring(sep)
  eq = (eq == nil or eq == "") and "=" or tostring(eq)
  local budget = 1000
  if type(options) == "table" and type(options.maxKeys) == "number" then
    budget = options.maxKeys > 0 and options.maxKeys or -1
  end
  local decode = decoder(type(options) == "table"
    and type(options.decodeURIComponent) == "function" and options.decodeURIComponent)
  local pos, len, seplen, eqlen = 1, #s, #sep, #eq
  while pos <= len do
    local stop = find(s, sep, pos, true)
    local last = (stop or len + 1) - 1
    if last >= pos then
      local e = find(s, eq, pos, true)
      if e and e <= last - eqlen + 1 then
        add(obj, decode(sub(s, pos, e - 1)), decode(sub(s, e + eqlen, last)))
      else
        add(obj, decode(sub(s, pos, last)), "")
      end
    end
    -- Empty pairs count too, as in Node.
    budget = budget - 1
    if budget == 0 or not stop then break end
    pos = stop + seplen
  end
  return obj
end

-- A value as stringify writes it: escaped text, or "" for what has none.
local function value_string(v, encode)
  local t = type(v)
  if t == "string" then
    return v == "" and "" or encode(v)
  elseif t == "number" then
    local n = number_string(v)
    return n and encode(n) or ""
  elseif t == "boolean" then
    return v and "true" or "false"
  end
  return ""
end

-- A list is a table whose keys are exactly 1..n (an empty table too).
local function is_list(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true
end

function querystring.stringify(obj, sep, eq, options)
  if type(obj) ~= "table" then return "" end
  sep = (sep == nil or sep == "") and "&" or tostring(sep)
  eq = (eq == nil or eq == "") and "=" or tostring(eq)
  local encode = escape
  if type(options) == "table" and type(options.encodeURIComponent) == "function" then
    local custom = options.encodeURIComponent
    encode = function(s) return tostring(custom(s)) end
  end
  local keys, names = {}, {}
  for k in pairs(obj) do
    local name = type(k) == "number" and number_string(k) or k
    if type(name) ~= "string" then
      error("bad argument #1 to 'stringify' (a key is a " .. type(k) .. ")", 2)
    end
    keys[#keys + 1] = name
    names[name] = k
  end
  sort(keys)
  local out = {}
  for _, name in ipairs(keys) do
    local v = obj[names[name]]
    local prefix = encode(name) .. eq
    if type(v) == "table" and is_list(v) then
      for i = 1, #v do out[#out + 1] = prefix .. value_string(v[i], encode) end
    else
      out[#out + 1] = prefix .. value_string(v, encode)
    end
  end
  return concat(out, sep)
end

querystring.decode = querystring.parse
querystring.encode = querystring.stringify

return querystring
