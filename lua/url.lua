-- url: Node's legacy url module (also the global `url`): parse, format,
-- resolve.
--
--   local u = url.parse("https://user:pw@a.com:8080/p/a?x=1&x=2#top", true)
--   u.protocol "https:", u.slashes true, u.auth "user:pw",
--   u.host "a.com:8080", u.port "8080" (a string, as Node), u.hostname "a.com",
--   u.pathname "/p/a", u.search "?x=1&x=2", u.query { x = { "1", "2" } },
--   u.path "/p/a?x=1&x=2", u.hash "#top", u.href (the URL, normalized)
--
-- Parts a URL does not have are nil (Node's null). url.parse follows Node's
-- url.parse: the protocol and hostname are lower-cased, an IPv6 host keeps
-- its brackets in `host` and loses them in `hostname`, backslashes before
-- the query become slashes, and characters that may not appear in a URL
-- (space, quotes, <, >, {, }, |, \, ^, `) are percent-encoded. It does not
-- convert non-ASCII hostnames to punycode (they are kept as they are).
-- A request's req.url ("/a?b=c") parses without a protocol or host.
-- url.resolve(from, to) resolves as RFC 3986 says (as a browser does).

local querystring = require("querystring")

local byte, find, format, gsub, lower, match, sub = string.byte,
  string.find, string.format, string.gsub, string.lower, string.match,
  string.sub
local type, error, ipairs, concat = type, error, ipairs, table.concat

local url = {}

-- Protocols that always have "//", and those that never have a host.
local SLASHED = {}
for _, p in ipairs({ "http", "https", "ftp", "gopher", "file", "ws", "wss" }) do
  SLASHED[p] = true
  SLASHED[p .. ":"] = true
end
local HOSTLESS = { javascript = true, ["javascript:"] = true }

-- Characters url.parse escapes wherever they appear after the host.
local AUTO_ESCAPE = {}
for c in ("\t\n\r \"'<>\\^`{|}"):gmatch(".") do
  AUTO_ESCAPE[c] = format("%%%02X", byte(c))
end

-- Characters that end a hostname (the host-ending ones / ? # aside).
local NON_HOST = "[ \"%%';<>\\^`{|}]"

local function check_string(s, fn)
  if type(s) ~= "string" then
    error(("bad argument #1 to '%s' (string expected, got %s)"):format(fn, type(s)), 3)
  end
end

-- s without leading and trailing bytes 0-32 (spaces, controls).
local function trim(s)
  local first, last = 1, #s
  while first <= last and byte(s, first) <= 32 do first = first + 1 end
  while last >= first and byte(s, last) <= 32 do last = last - 1 end
  return sub(s, first, last)
end

local function is_ipv6(hostname)
  return byte(hostname, 1) == 91 and byte(hostname, -1) == 93 -- [ ]
end

-- Fills u.auth, u.host, u.port, u.hostname from the front of rest (what
-- follows "//"), and returns what is left of rest.
local function parse_authority(u, rest, original)
  -- Tabs and newlines in the authority are dropped (WHATWG and Node).
  local host_end = find(rest, "[#/?]")
  local authority = sub(rest, 1, (host_end or #rest + 1) - 1)
  if find(authority, "[\t\n\r]") then authority = gsub(authority, "[\t\n\r]", "") end
  rest = authority .. (host_end and sub(rest, host_end) or "")

  local at = find(authority, "@[^@]*$")
  local start = 1
  if at then
    u.auth = querystring.unescape(sub(authority, 1, at - 1))
    start = at + 1
  end
  local stop = find(authority, NON_HOST, start) or #authority + 1
  local host = sub(rest, start, stop - 1)
  rest = sub(rest, stop)

  local port = match(host, ":(%d*)$")
  if port then
    if port ~= "" then u.port = port end
    host = sub(host, 1, #host - #port - 1)
  end
  local hostname = host
  local ipv6 = is_ipv6(hostname)
  if not ipv6 then
    -- What is left of a bad port ("a.com:80x") moves to the path.
    local bad = find(hostname, ":", 1, true)
    if bad then
      rest = "/" .. sub(hostname, bad) .. rest
      hostname = sub(hostname, 1, bad - 1)
    end
  end
  hostname = #hostname > 255 and "" or lower(hostname)
  if hostname ~= "" then
    local forbidden = ipv6 and "[%z\t\n\r #%%/<>?@\\^|]" or "[%z\t\n\r #%%/:<>?@%[\\%]^|]"
    if find(hostname, forbidden) then error("invalid URL: " .. original, 3) end
  end
  u.host = hostname .. (u.port and ":" .. u.port or "")
  u.hostname = hostname
  if ipv6 then
    u.hostname = sub(hostname, 2, -2)
    if byte(rest, 1) ~= 47 then rest = "/" .. rest end
  end
  return rest
end

-- search, query, hash, pathname and path from what follows the host.
local function parse_path(u, rest, protocol, parse_query)
  if not HOSTLESS[protocol] then rest = gsub(rest, "[\t\n\r \"'<>\\^`{|}]", AUTO_ESCAPE) end
  local hash = find(rest, "#", 1, true)
  local q = find(rest, "?", 1, true)
  if q and hash and q > hash then q = nil end
  if hash then u.hash = sub(rest, hash) end
  if q then
    local last = hash and hash - 1 or -1
    u.search = sub(rest, q, last)
    u.query = sub(rest, q + 1, last)
    if parse_query then u.query = querystring.parse(u.query) end
  elseif parse_query then
    u.query = {}
  end
  local first = q or hash
  if not first then
    if rest ~= "" then u.pathname = rest end
  elseif first > 1 then
    u.pathname = sub(rest, 1, first - 1)
  end
  if SLASHED[protocol] and u.hostname and u.hostname ~= "" and not u.pathname then
    u.pathname = "/"
  end
  if u.pathname or u.search then u.path = (u.pathname or "") .. (u.search or "") end
end

-- A plain path ("/a/b?c", what req.url usually is): taken as it is.
local function parse_simple(rest, parse_query)
  if byte(rest, 1) ~= 47 or sub(rest, 1, 3) == "///" or find(rest, "%s") then
    return nil
  end
  local u = { path = rest, href = rest }
  local q = find(rest, "?", 1, true)
  u.pathname = q and sub(rest, 1, q - 1) or rest
  if q then
    u.search = sub(rest, q)
    u.query = sub(rest, q + 1)
    if parse_query then u.query = querystring.parse(u.query) end
  elseif parse_query then
    u.query = {}
  end
  return u
end

-- url.parse(s[, parseQuery][, slashesDenoteHost]) -> table (see the top).
-- With slashesDenoteHost, "//a/b" is host a, path /b (else a path).
function url.parse(s, parse_query, slashes_denote_host)
  check_string(s, "parse")
  local rest = trim(s)
  -- Backslashes before the query or fragment are slashes, as browsers say.
  local split = find(rest, "[?#]")
  local head = split and sub(rest, 1, split - 1) or rest
  if find(head, "\\", 1, true) then
    head = gsub(head, "\\", "/")
    rest = head .. (split and sub(rest, split) or "")
  end
  if not slashes_denote_host and not find(head, "@", 1, true) and not find(rest, "#", 1, true) then
    local u = parse_simple(rest, parse_query)
    if u then return u end
  end

  local u = {}
  local proto = match(rest, "^[%w%.%+%-]+:")
  local protocol
  if proto then
    protocol = lower(proto)
    u.protocol = protocol
    rest = sub(rest, #proto + 1)
  end
  local slashes
  if slashes_denote_host or proto or find(rest, "^//[^@/]+@[^@/]+") then
    slashes = sub(rest, 1, 2) == "//"
    if slashes and not HOSTLESS[protocol] then
      rest = sub(rest, 3)
      u.slashes = true
    end
  end
  -- A protocol spelled in capitals is not recognized as slashed (as Node).
  if not HOSTLESS[protocol] and (slashes or (proto and not SLASHED[proto])) then
    rest = parse_authority(u, rest, s)
  end
  parse_path(u, rest, protocol, parse_query)
  u.href = url.format(u)
  return u
end

-- Characters of the auth part that format leaves as they are.
local function escape_auth(auth)
  return (gsub(auth, "[^A-Za-z0-9!'%(%)%*%-%._~:]", function(c)
    return format("%%%02X", byte(c))
  end))
end

local function truthy(v)
  return v ~= nil and v ~= false and v ~= "" and v ~= 0
end

-- url.format(u) -> string: a table as url.parse makes (or a URL string,
-- which is parsed and formatted, normalizing it). Node's rules: host wins
-- over hostname + port; search wins over query (a table is stringified);
-- "//" for slashed protocols (http, https, ftp, gopher, file, ws, wss) or
-- when u.slashes says so.
function url.format(u)
  if type(u) == "string" then
    u = url.parse(u)
  elseif type(u) ~= "table" then
    error("bad argument #1 to 'format' (table or string expected, got " .. type(u) .. ")", 2)
  end
  local auth = truthy(u.auth) and escape_auth(u.auth) .. "@" or ""
  local protocol = truthy(u.protocol) and u.protocol or ""
  local pathname = truthy(u.pathname) and u.pathname or ""
  local hash = truthy(u.hash) and u.hash or ""
  local host = ""
  if truthy(u.host) then
    host = auth .. u.host
  elseif truthy(u.hostname) then
    local hostname = u.hostname
    if find(hostname, ":", 1, true) and not is_ipv6(hostname) then
      hostname = "[" .. hostname .. "]"
    end
    host = auth .. hostname .. (truthy(u.port) and ":" .. u.port or "")
  end
  local search = truthy(u.search) and u.search or ""
  if search == "" and type(u.query) == "table" then
    local query = querystring.stringify(u.query)
    if query ~= "" then search = "?" .. query end
  end
  if protocol ~= "" and sub(protocol, -1) ~= ":" then protocol = protocol .. ":" end
  pathname = gsub(pathname, "[?#]", { ["?"] = "%3F", ["#"] = "%23" })
  if u.slashes or SLASHED[protocol] then
    if u.slashes or host ~= "" then
      if pathname ~= "" and byte(pathname, 1) ~= 47 then pathname = "/" .. pathname end
      host = "//" .. host
    elseif sub(protocol, 1, 4) == "file" then
      host = "//"
    end
  end
  search = gsub(search, "#", "%%23")
  if hash ~= "" and byte(hash, 1) ~= 35 then hash = "#" .. hash end
  if search ~= "" and byte(search, 1) ~= 63 then search = "?" .. search end
  return protocol .. host .. pathname .. search .. hash
end

-- RFC 3986 5.2.4: removes "." and ".." segments from a path.
local function remove_dots(path)
  local out = {}
  while path ~= "" do
    if sub(path, 1, 3) == "../" then
      path = sub(path, 4)
    elseif sub(path, 1, 2) == "./" then
      path = sub(path, 3)
    elseif sub(path, 1, 3) == "/./" then
      path = sub(path, 3)
    elseif path == "/." then
      path = "/"
    elseif sub(path, 1, 4) == "/../" or path == "/.." then
      path = "/" .. sub(path, 5)
      out[#out] = nil
    elseif path == "." or path == ".." then
      path = ""
    else
      local seg = match(path, "^/?[^/]*")
      out[#out + 1] = seg
      path = sub(path, #seg + 1)
    end
  end
  return concat(out)
end

local AUTHORITY = { "slashes", "auth", "host", "port", "hostname" }

-- url.resolve(from, to) -> string: the URL `to` points at when met in a
-- document at `from` (RFC 3986 5.2, as a browser resolves a link).
function url.resolve(from, to)
  check_string(from, "resolve")
  if type(to) ~= "string" then
    error("bad argument #2 to 'resolve' (string expected, got " .. type(to) .. ")", 2)
  end
  local base, ref = url.parse(from, false, true), url.parse(to, false, true)
  if ref.protocol == base.protocol then ref.protocol = nil end
  local t = { protocol = ref.protocol or base.protocol, hash = ref.hash }
  local source = (ref.protocol or ref.host) and ref or base
  for _, k in ipairs(AUTHORITY) do t[k] = source[k] end
  local path = ref.pathname or ""
  if ref.protocol or ref.host then
    t.pathname, t.search = remove_dots(path), ref.search
  elseif path == "" then
    t.pathname, t.search = base.pathname, ref.search or base.search
  else
    if byte(path, 1) ~= 47 then
      local dir = match(base.pathname or "", "^.*/")
      if not dir and base.host then dir = "/" end
      path = (dir or "") .. path
    end
    t.pathname, t.search = remove_dots(path), ref.search
  end
  if t.pathname == "" then t.pathname = nil end
  -- As url.parse does: a slashed URL with a host has at least "/".
  if not t.pathname and SLASHED[t.protocol] and truthy(t.hostname) then t.pathname = "/" end
  return url.format(t)
end

return url
