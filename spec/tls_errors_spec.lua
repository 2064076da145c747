-- TLS and bad input: what is not a TLS hello, plain HTTP to the TLS port,
-- handshakes that never finish or are cut short (each closed, logged with
-- its reason, and the server goes on serving); certificates a client must
-- refuse (expired, self-signed, another host's, an unknown CA), each with
-- Node's code, and a TLS client talking to a plain HTTP server.
local lc = require("lc")
local certs = require("certs")

local set = certs.make()

local run = lc.run_ok

local line = lc.field

describe("TLS bad input", function()
  after_each(lc.cleanup)

  it("closes what is not TLS, answers plain HTTP 400, times out silent handshakes, and serves on", function()
    local p = lc.run(certs.prelude(set) .. [[
local https = require("https")
local core = require("luacluster.core")
local server = https.createServer({ key = KEY_server, cert = CERT_server, handshakeTimeout = 500 },
  function(req, res)
    local st = core.tls_stats()
    res:finish(("served pid=%d failed=%d not_tls=%d"):format(process.pid, st.failed, st.not_tls))
  end)
server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
]], nil, { env = { LUACLUSTER_LOG_LEVEL = "debug" } })
    local port = p:port()

    -- garbage instead of a ClientHello: closed, nothing said
    local c = assert(lc.connect(port))
    c:send("\1\2\3 this is not TLS\r\n\r\n")
    local got, why = c:read_all(3000)
    assert.are.equal("", got)
    assert.are.equal("closed", why)
    p:wait_for("not a TLS handshake: closed")

    -- plain HTTP: nginx's answer, then the close
    c = assert(lc.connect(port))
    c:send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    got, why = c:read_all(3000)
    assert.matches("^HTTP/1.1 400 Bad Request\r\n", got)
    assert.matches("The plain HTTP request was sent to HTTPS port", got, 1, true)
    assert.matches("Connection: close", got, 1, true)
    assert.are.equal("closed", why)
    p:wait_for("plain HTTP sent to a TLS port: answered 400")

    -- a handshake that never finishes: silence, then half a hello
    local t0 = lc.now()
    c = assert(lc.connect(port))
    assert.is_true(c:closed_within(5000))
    local waited = lc.now() - t0
    assert.is_true(waited >= 450 and waited < 3000, "closed after " .. waited .. " ms")
    c = assert(lc.connect(port))
    c:send("\22\3\1\2\0\1\0\1\252\3\3")
    assert.is_true(c:closed_within(5000))
    p:wait_for("TLS handshake timed out")

    -- a hello that makes no sense: an alert, then the close
    c = assert(lc.connect(port))
    c:send("\22\3\1\0\8\1\0\0\4\3\3\1\1")
    got = c:read_all(3000)
    assert.are.equal(21, got:byte(1)) -- an alert record
    p:wait_for("TLS handshake failed: [^\n]*length mismatch")

    -- a client that gives up on our certificate (it does not trust it)
    local f = io.popen(("echo | openssl s_client -connect 127.0.0.1:%d -verify_return_error 2>&1"):format(port))
    f:read("*a")
    f:close()
    p:wait_for("TLS connection from 127%.0%.0%.1:%d+: TLS handshake failed: [^\n]*unknown ca")

    -- and the server serves on, counting what it refused
    f = io.popen(("curl -sS --cacert %s https://localhost:%d/"):format(set.path("ca"), port))
    local body = f:read("*a")
    f:close()
    assert.matches("served pid=" .. p.pid .. " failed=4 not_tls=2", body, 1, true)
    assert.is_nil(p:output():find("%[ERROR%]"), p:output())
  end)

  it("refuses expired, self-signed, other hosts' and unknown certificates with Node's codes", function()
    local out = run(certs.prelude(set, { "server", "expired", "selfsigned", "wronghost" }) .. [[
local https, tls = require("https"), require("tls")
local servers, ports = { server = CERT_server, expired = CERT_expired,
                         selfsigned = CERT_selfsigned, wronghost = CERT_wronghost }, {}
local keys = { server = KEY_server, expired = KEY_expired, selfsigned = KEY_selfsigned,
               wronghost = KEY_wronghost }
local pending = 4
for name, cert in pairs(servers) do
  local s = https.createServer({ key = keys[name], cert = cert }, function(req, res) res:finish("ok") end)
  s:listen(0, "127.0.0.1", function()
    ports[name] = s:address().port
    pending = pending - 1
    if pending > 0 then return end
    setTimeout(function()
      local function url(n) return "https://localhost:" .. ports[n] .. "/" end
      for _, n in ipairs({ "expired", "selfsigned", "wronghost" }) do
        local res, err = fetch(url(n), { ca = CA })
        print("FETCH-" .. n, res, err)
        local ok = fetch(url(n), { ca = CA, rejectUnauthorized = false })
        print("OPTOUT-" .. n, ok and ok.body)
      end
      -- a CA the client was not given (the system's store does not have ours)
      print("FETCH-unknown", fetch(url("server")))
      local left = 5
      local function done() left = left - 1 if left == 0 then process.exit(0) end end
      for _, n in ipairs({ "expired", "selfsigned", "wronghost", "server" }) do
        https.get({ host = "localhost", port = ports[n], ca = n ~= "server" and CA or nil },
          function(r) print("GET-" .. n, "no error?", r.statusCode) done() end)
          :on("error", function(e) print("GET-" .. n, e.code, e.message) done() end)
      end
      local s
      s = tls.connect({ port = ports.wronghost, host = "localhost", ca = CA, rejectUnauthorized = false },
        function()
          print("CONNECT-optout", s.authorized, s.authorizationError)
          s:destroy()
          done()
        end)
    end, 1)
  end)
end
]])
    assert.are.equal("nil\tcertificate has expired", line(out, "FETCH-expired"))
    assert.are.equal("nil\tself-signed certificate", line(out, "FETCH-selfsigned"))
    assert.are.equal("nil\tHostname/IP does not match certificate's altnames: " ..
                     "Host: localhost is not in the cert's altnames", line(out, "FETCH-wronghost"))
    assert.are.equal("nil\tunable to get local issuer certificate", line(out, "FETCH-unknown"))
    for _, n in ipairs({ "expired", "selfsigned", "wronghost" }) do
      assert.are.equal("ok", line(out, "OPTOUT-" .. n))
    end
    assert.are.equal("CERT_HAS_EXPIRED\tcertificate has expired", line(out, "GET-expired"))
    assert.are.equal("DEPTH_ZERO_SELF_SIGNED_CERT\tself-signed certificate", line(out, "GET-selfsigned"))
    assert.are.equal("ERR_TLS_CERT_ALTNAME_INVALID\tHostname/IP does not match certificate's " ..
                     "altnames: Host: localhost is not in the cert's altnames", line(out, "GET-wronghost"))
    assert.are.equal("UNABLE_TO_GET_ISSUER_CERT_LOCALLY\tunable to get local issuer certificate",
                     line(out, "GET-server"))
    assert.are.equal("false\tERR_TLS_CERT_ALTNAME_INVALID", line(out, "CONNECT-optout"))
  end)

  it("fails a TLS client of a plain server, or of one that closes during the handshake", function()
    local out = run(certs.prelude(set) .. [[
local https, tls = require("https"), require("tls")
local plain = http.createServer(function(req, res) res:finish("plain") end)
local closer = net.createServer(function(sock) sock:destroy() end)
plain:listen(0, "127.0.0.1", function()
  closer:listen(0, "127.0.0.1", function()
    setTimeout(function()
      print("FETCH-plain", fetch("https://localhost:" .. plain:address().port .. "/", { ca = CA }))
      print("FETCH-closer", fetch("https://localhost:" .. closer:address().port .. "/", { ca = CA }))
      https.get({ host = "localhost", port = plain:address().port, ca = CA }, function() end)
        :on("error", function(e)
          print("GET-plain", e.code, e.message)
          local s = tls.connect(closer:address().port, "localhost", { ca = CA })
          s:on("error", function(e2) print("CONNECT-closer", e2.code) end)
          s:on("close", function() process.exit(0) end)
        end)
    end, 1)
  end)
end)
]])
    assert.are.equal("nil\twrong version number", line(out, "FETCH-plain"))
    assert.are.equal("nil\tclosed", line(out, "FETCH-closer"))
    assert.are.equal("ERR_SSL_WRONG_VERSION_NUMBER\twrong version number", line(out, "GET-plain"))
    assert.are.equal("ECONNRESET", line(out, "CONNECT-closer"))
  end)
end)
