-- certs: the certificates the TLS specs use, made at test time with the
-- openssl command into a fresh directory (nothing is checked in):
--
--   ca          a CA that signs the others
--   server      localhost and 127.0.0.1, valid
--   server2     the same names, another key (a certificate that changed)
--   expired     the same names, expired last year
--   wronghost   wrong.example only
--   selfsigned  localhost, signed by itself
--   a, b        a.test and b.test (SNI: two names, two certificates)
--   encrypted   server's key under the passphrase "secret"
--
-- certs.make() -> {dir=, path(name, ext), pem(name, ext)}; ext is "crt" or
-- "key". Keys are P-256: quick to make.

local lc = require("lc")

local certs = {}

local function run(dir, cmd)
  local ok = os.execute("cd '" .. dir .. "' && " .. cmd .. " >>openssl.log 2>&1")
  if ok ~= 0 and ok ~= true then
    error("openssl failed: " .. cmd .. "\n" .. lc.read_file(dir .. "/openssl.log"), 2)
  end
end

local CA_CONF = [[
[ ca ]
default_ca = test
[ test ]
dir = .
database = ./index.txt
new_certs_dir = .
serial = ./serial
default_md = sha256
policy = any
unique_subject = no
email_in_dn = no
[ any ]
commonName = supplied
[ leaf ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = $ENV::SAN
]]

local made = 0

-- A key and a signing request for cn, then a certificate from the CA with
-- san, valid between start and finish (openssl ca's dates) or for 30 days.
local function leaf(dir, name, cn, san, start, finish)
  run(dir, ("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
            "-keyout %s.key -out %s.csr -subj '/CN=%s'"):format(name, name, cn))
  local dates = start and ("-startdate %s -enddate %s"):format(start, finish) or "-days 30"
  run(dir, ("SAN='%s' openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key " ..
            "-extensions leaf -notext %s -in %s.csr -out %s.crt"):format(san, dates, name, name))
end

function certs.make()
  made = made + 1
  local dir = ("%s/certs%d"):format(lc.tmpdir(), made)
  os.execute("mkdir -p '" .. dir .. "'")
  local f = assert(io.open(dir .. "/ca.cnf", "w"))
  f:write(CA_CONF)
  f:close()
  f = assert(io.open(dir .. "/index.txt", "w"))
  f:close()
  f = assert(io.open(dir .. "/serial", "w"))
  f:write("1000\n")
  f:close()
  run(dir, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
           "-keyout ca.key -out ca.crt -days 30 -subj '/CN=luacluster test CA' " ..
           "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign")
  leaf(dir, "server", "localhost", "DNS:localhost,IP:127.0.0.1")
  leaf(dir, "server2", "localhost", "DNS:localhost,IP:127.0.0.1")
  -- Dates in the past: last year's January.
  local y = tonumber(os.date("!%y")) - 1
  leaf(dir, "expired", "localhost", "DNS:localhost,IP:127.0.0.1",
       ("%02d0101000000Z"):format(y), ("%02d0201000000Z"):format(y))
  leaf(dir, "wronghost", "wrong.example", "DNS:wrong.example")
  leaf(dir, "a", "a.test", "DNS:a.test")
  leaf(dir, "b", "b.test", "DNS:b.test")
  run(dir, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
           "-keyout selfsigned.key -out selfsigned.crt -days 30 -subj '/CN=localhost' " ..
           "-addext subjectAltName=DNS:localhost,IP:127.0.0.1")
  run(dir, "openssl pkey -in server.key -aes256 -passout pass:secret -out encrypted.key")
  local set = { dir = dir }
  function set.path(name, ext) return ("%s/%s.%s"):format(dir, name, ext or "crt") end
  function set.pem(name, ext) return lc.read_file(set.path(name, ext)) end
  return set
end

-- Lua source that defines slurp(path) and the PEM variables an app needs:
-- CA, and KEY_<name> / CERT_<name> for each name given.
function certs.prelude(set, names)
  local lines = { "local function slurp(p) local f = assert(io.open(p)) " ..
                  "local s = f:read('*a') f:close() return s end",
                  ("local CA = slurp(%q)"):format(set.path("ca")) }
  for _, n in ipairs(names or { "server" }) do
    lines[#lines + 1] = ("local KEY_%s, CERT_%s = slurp(%q), slurp(%q)")
      :format(n, n, set.path(n, "key"), set.path(n))
  end
  return table.concat(lines, "\n") .. "\n"
end

return certs
