-- https: our HTTPS server and client, each against the other and against
-- independent peers (curl, openssl s_client, openssl s_server); SNI, ALPN,
-- the protocol floor, keys with a passphrase, and the agent pooling TLS
-- connections. Certificates are made at test time (helpers/certs.lua).
local lc = require("lc")
local certs = require("certs")

local set = certs.make()

local run = lc.run_ok

local line = lc.field

-- Runs a shell command; returns its output (stdout and stderr).
local function sh(cmd)
  local f = io.popen(cmd .. " 2>&1")
  local out = f:read("*a")
  f:close()
  return out
end

-- An HTTPS server (in the background) that answers what it saw; returns
-- the process and its port. opts: Lua source of extra createServer options.
local function start_server(opts, names)
  local p = lc.run(certs.prelude(set, names) .. [[
local https = require("https")
local server = https.createServer({ key = KEY_server, cert = CERT_server, ]] .. (opts or "") .. [[ },
  function(req, res)
    local s = req.socket
    res:finish(("%s %s proto=%s alpn=%s sni=%s encrypted=%s port=%d"):format(
      req.method, req.url, tostring(s:getProtocol()), tostring(s.alpnProtocol),
      tostring(s.servername), tostring(s.encrypted), s.remotePort))
  end)
server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
]])
  return p, p:port()
end

describe("https", function()
  after_each(lc.cleanup)

  it("serves our own client: fetch and https.get, verified with the CA", function()
    local out = run(certs.prelude(set) .. [[
local https = require("https")
local server = https.createServer({ key = KEY_server, cert = CERT_server }, function(req, res)
  local body = {}
  req:on("data", function(c) body[#body + 1] = c end)
  req:on("end", function()
    res:setHeader("X-Proto", req.socket:getProtocol())
    res:finish(req.method .. " " .. req.url .. " " .. table.concat(body) .. " " ..
               tostring(req.socket.alpnProtocol) .. " " .. tostring(req.socket.servername))
  end)
end)
server:listen(0, "127.0.0.1", function()
  local port = server:address().port
  setTimeout(function()
    local res, err = fetch("https://localhost:" .. port .. "/f?x=1",
                           { ca = CA, method = "POST", body = "payload" })
    print("FETCH", res and res.status, res and res.body, res and res.headers["x-proto"], err)
    -- An IP address is checked against the certificate's IP names.
    res, err = fetch("https://127.0.0.1:" .. port .. "/ip", { ca = CA })
    print("FETCH-IP", res and res.body, err)
    https.get({ host = "localhost", port = port, path = "/node", ca = CA }, function(r)
      local chunks = {}
      r:on("data", function(c) chunks[#chunks + 1] = c end)
      r:on("end", function()
        print("GET", r.statusCode, table.concat(chunks))
        process.exit(0)
      end)
    end):on("error", function(e) print("GET-ERR", e.code, e.message) process.exit(1) end)
  end, 1)
end)
]])
    assert.are.equal("200\tPOST /f?x=1 payload http/1.1 localhost\tTLSv1.3\tnil", line(out, "FETCH"))
    assert.are.equal("GET /ip  http/1.1 nil\tnil", line(out, "FETCH-IP"))
    assert.are.equal("200\tGET /node  http/1.1 localhost", line(out, "GET"))
  end)

  it("is checked by curl --cacert: TLS 1.3, ALPN http/1.1, keep-alive", function()
    local _, port = start_server()
    local url = ("https://localhost:%d"):format(port)
    local out = sh(("curl -sS --cacert %s %s/a %s/b -w ' http=%%{http_version} connects=%%{num_connects}\\n'")
                   :format(set.path("ca"), url, url))
    local a_port = out:match("GET /a proto=TLSv1%.3 alpn=http/1%.1 sni=localhost encrypted=true port=(%d+) http=1%.1 connects=1")
    local b_port = out:match("GET /b proto=TLSv1%.3 alpn=http/1%.1 sni=localhost encrypted=true port=(%d+) http=1%.1 connects=0")
    assert.is_truthy(a_port, out)
    -- one connection for both requests
    assert.are.equal(a_port, b_port, out)
    local verbose = sh(("curl -sv --cacert %s %s/"):format(set.path("ca"), url))
    assert.matches("ALPN: server accepted http/1.1", verbose, 1, true)
    -- curl trusts nothing it was not told: without the CA it refuses
    assert.matches("unable to get local issuer certificate", sh("curl -sS " .. url .. "/"), 1, true)
  end)

  it("offers ALPN http/1.1 only, goes on without ALPN, and refuses TLS below 1.2", function()
    local _, port = start_server()
    local connect = ("echo | openssl s_client -connect 127.0.0.1:%d -servername localhost "):format(port)
    assert.matches("ALPN protocol: http/1.1", sh(connect .. "-alpn h2,http/1.1"), 1, true)
    -- a client that offers only h2 still gets a connection, without ALPN
    local h2 = sh(connect .. "-alpn h2")
    assert.matches("No ALPN negotiated", h2, 1, true)
    assert.matches("Verify return code", h2, 1, true)
    assert.matches("Protocol  : TLSv1.2", sh(connect .. "-tls1_2"), 1, true)
    local old = sh(connect .. "-tls1_1")
    assert.matches("alert protocol version", old, 1, true)
  end)

  it("serves two names with two certificates (SNI table, addContext, SNICallback)", function()
    local _, port = start_server([[
      sni = { ["a.test"] = { key = KEY_a, cert = CERT_a } },
      SNICallback = function(name, cb)
        if name == "late.b.test" then cb(nil, { key = KEY_b, cert = CERT_b }) end
      end,
    ]], { "server", "a", "b" })
    local function subject(name)
      return sh(("echo | openssl s_client -connect 127.0.0.1:%d -servername %s -CAfile %s" ..
                 " 2>/dev/null | openssl x509 -noout -subject"):format(port, name, set.path("ca")))
    end
    assert.matches("CN = a.test", subject("a.test"), 1, true)
    assert.matches("CN = b.test", subject("late.b.test"), 1, true)
    assert.matches("CN = localhost", subject("localhost"), 1, true)
    assert.matches("CN = localhost", subject("unknown.test"), 1, true)
    -- curl checks a.test's certificate for a.test and gets a.test's answer
    local out = sh(("curl -sS --cacert %s --resolve a.test:%d:127.0.0.1 https://a.test:%d/x")
                   :format(set.path("ca"), port, port))
    assert.matches("GET /x proto=TLSv1.3 alpn=http/1.1 sni=a.test", out, 1, true)

    -- our own client, and addContext on a running server
    out = run(certs.prelude(set, { "server", "b" }) .. [[
local https, tls = require("https"), require("tls")
local server = https.createServer({ key = KEY_server, cert = CERT_server }, function(req, res)
  res:finish("sni=" .. tostring(req.socket.servername))
end)
server:addContext("*.b.test", tls.createSecureContext({ key = KEY_b, cert = CERT_b }))
server:listen(0, "127.0.0.1", function()
  local port = server:address().port
  setTimeout(function()
    local s
    s = tls.connect({ host = "127.0.0.1", port = port, servername = "x.b.test", ca = CA,
                      rejectUnauthorized = false }, function()
      print("PEER", s:getPeerCertificate().subject, s.authorized, s.authorizationError)
      s:destroy()
      local res, err = fetch("https://127.0.0.1:" .. port .. "/", { ca = CA, servername = "x.b.test",
                                                                     rejectUnauthorized = false })
      print("FETCH", res and res.body, err)
      process.exit(0)
    end)
  end, 1)
end)
]])
    -- b.test's certificate does not name x.b.test: authorized is false and
    -- says why (the connection went on: rejectUnauthorized = false)
    assert.are.equal("CN=b.test\tfalse\tERR_TLS_CERT_ALTNAME_INVALID", line(out, "PEER"))
    assert.are.equal("sni=x.b.test\tnil", line(out, "FETCH"))
  end)

  it("is a client of an independent server (openssl s_server)", function()
    local server = lc.spawn({ "openssl", "s_server", "-accept", "0", "-naccept", "3", "-www",
                              "-cert", set.path("server"), "-key", set.path("server", "key") })
    local port = tonumber(server:wait_for("ACCEPT [^\n]*:(%d+)\n", 10000))
    local out = run(certs.prelude(set) .. [[
local https = require("https")
setTimeout(function()
  local res, err = fetch("https://localhost:]] .. port .. [[/", { ca = CA })
  print("FETCH", res and res.status, res and res.body:match("Protocol%s*: (TLSv[%d.]+)"), err)
  local bad, why = fetch("https://localhost:]] .. port .. [[/")
  print("SYSTEM-CAS", bad, why)
  https.get({ host = "localhost", port = ]] .. port .. [[, ca = CA }, function(r)
    print("GET", r.statusCode)
    r:on("data", function() end)
    r:on("end", function() process.exit(0) end)
  end)
end, 1)
]])
    assert.are.equal("200\tTLSv1.3\tnil", line(out, "FETCH"))
    -- s_server's certificate is signed by our CA, which the system's store
    -- does not have
    assert.are.equal("nil\tunable to get local issuer certificate", line(out, "SYSTEM-CAS"))
    assert.are.equal("200", line(out, "GET"))
  end)

  it("takes an encrypted key with its passphrase, and says what is wrong with bad options", function()
    local out = run(certs.prelude(set) .. [[
local https = require("https")
local ENC = slurp("]] .. set.path("encrypted", "key") .. [[")
local function try(name, opts)
  local ok, err = pcall(https.createServer, opts)
  print(name, ok, ok and "" or err:match("tls: (.*)$"))
end
try("PASSPHRASE", { key = ENC, cert = CERT_server, passphrase = "secret" })
try("WRONG-PASS", { key = ENC, cert = CERT_server, passphrase = "nope" })
try("NO-PASS", { key = ENC, cert = CERT_server })
try("MISMATCH", { key = slurp("]] .. set.path("a", "key") .. [["), cert = CERT_server })
try("NOT-PEM", { key = KEY_server, cert = "hello" })
try("NO-CERT", { key = KEY_server })
try("OLD", { key = KEY_server, cert = CERT_server, minVersion = "TLSv1.1" })
local server = https.createServer({ key = ENC, cert = CERT_server, passphrase = "secret" },
  function(req, res) res:finish("ok") end)
server:listen(0, "127.0.0.1", function()
  setTimeout(function()
    local res = fetch("https://localhost:" .. server:address().port .. "/", { ca = CA })
    print("SERVED", res and res.body)
    process.exit(0)
  end, 1)
end)
]])
    assert.are.equal("true\t", line(out, "PASSPHRASE"))
    assert.matches("^false\tcannot read the key %(a wrong passphrase%?%)", line(out, "WRONG-PASS"))
    assert.matches("^false\tkey is not a PEM private key %(or it is encrypted and no passphrase was given%)",
                   line(out, "NO-PASS"))
    assert.matches("^false\tthe key does not match the certificate", line(out, "MISMATCH"))
    assert.matches("^false\tcert is not a PEM certificate", line(out, "NOT-PEM"))
    assert.are.equal("false\ta TLS server needs a key and a cert", line(out, "NO-CERT"))
    assert.are.equal('false\tminVersion must be "TLSv1.2" or "TLSv1.3" (got TLSv1.1)', line(out, "OLD"))
    assert.are.equal("ok", line(out, "SERVED"))
  end)

  it("pools TLS connections in its agent: one handshake for many requests", function()
    local out = run(certs.prelude(set) .. [[
local https = require("https")
local core = require("luacluster.core")
local ports = {}
local server = https.createServer({ key = KEY_server, cert = CERT_server }, function(req, res)
  ports[req.socket.remotePort] = true
  res:finish("ok")
end)
local function count() local n = 0 for _ in pairs(ports) do n = n + 1 end return n end
server:listen(0, "127.0.0.1", function()
  local port = server:address().port
  setTimeout(function()
    for i = 1, 5 do assert(fetch("https://localhost:" .. port .. "/" .. i, { ca = CA }).body == "ok") end
    local st = https.globalAgent:stats("localhost", port)
    print("POOLED", count(), st.connections, st.free)
    -- Node-style requests through one agent share its connections too
    local agent = https.Agent({ keepAlive = true, ca = CA })
    local left = 5
    local function one(i)
      https.get({ host = "localhost", port = port, path = "/n" .. i, agent = agent }, function(r)
        r:on("data", function() end)
        r:on("end", function()
          left = left - 1
          if left > 0 then one(i + 1) return end
          print("AGENT", count(), agent:stats().connections)
          -- other TLS options, another pool
          assert(fetch("https://localhost:" .. port .. "/x", { ca = CA, rejectUnauthorized = true,
                                                                 minVersion = "TLSv1.3" }))
          print("OPTIONS", count())
          -- agent = false: a connection of its own each time; the client
          -- resumes its session on the next one
          for j = 1, 3 do assert(fetch("https://localhost:" .. port .. "/o" .. j, { ca = CA, agent = false })) end
          print("OWN", count())
          local tls = core.tls_stats()
          print("HANDSHAKES", tls.handshakes, tls.resumed)
          process.exit(0)
        end)
      end)
    end
    one(1)
  end, 1)
end)
]])
    assert.are.equal("1\t1\t1", line(out, "POOLED"))
    assert.are.equal("2\t1", line(out, "AGENT"))
    assert.are.equal("3", line(out, "OPTIONS"))
    assert.are.equal("6", line(out, "OWN"))
    -- 6 connections, each counted by both ends (one process); the own
    -- connections after the first resumed (client and server both count)
    local hs, resumed = line(out, "HANDSHAKES"):match("^(%d+)\t(%d+)$")
    assert.are.equal(12, tonumber(hs))
    assert.is_true(tonumber(resumed) >= 4, out)
  end)
end)
