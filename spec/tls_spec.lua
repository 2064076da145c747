-- tls: raw TLS servers and clients (tls.createServer, tls.connect), client
-- certificates, sessions resumed by the client, and cosockets'
-- sslhandshake with OpenResty's returns.
local lc = require("lc")
local certs = require("certs")

local set = certs.make()

local run = lc.run_ok

local line = lc.field

local function sh(cmd)
  local f = io.popen(cmd .. " 2>&1")
  local out = f:read("*a")
  f:close()
  return out
end

-- A TLS echo server; the body runs (in a coroutine) once it listens, with
-- PORT set.
local function echo_app(body, server_opts, names)
  return certs.prelude(set, names) .. [[
local tls = require("tls")
local server = tls.createServer({ key = KEY_server, cert = CERT_server, ]] .. (server_opts or "") .. [[ },
  function(sock)
    print("ACCEPTED", sock:getProtocol(), tostring(sock.servername), sock:isSessionReused(),
          sock.authorized, tostring(sock.authorizationError),
          tostring(sock:getPeerCertificate().subject))
    sock:on("data", function(d)
      sock:write("echo:" .. d)
      if d:find("bye", 1, true) then sock:finish() end
    end)
    sock:on("end", function() sock:finish() end)
  end)
server:listen(0, "127.0.0.1", function()
  local PORT = server:address().port
  setTimeout(function()
]] .. body .. [[

  end, 1)
end)
]]
end

describe("tls", function()
  after_each(lc.cleanup)

  it("echoes over tls.connect: secureConnect, the peer certificate, a session resumed", function()
    local out = run(echo_app([[
    local s
    s = tls.connect(PORT, "localhost", { ca = CA }, function()
      local cert = s:getPeerCertificate()
      print("CONNECT", s:getProtocol(), s.authorized, s.alpnProtocol, s:isSessionReused(),
            cert.subject, cert.issuer, cert.subjectaltname, #cert.fingerprint256)
      s:write("hello")
    end)
    s:on("data", function(d)
      print("DATA", d)
      local session = s:getSession()
      s:finish()
      s:on("close", function()
        local again
        again = tls.connect({ port = PORT, host = "127.0.0.1", servername = "localhost",
                              ca = CA, session = session }, function()
          print("AGAIN", again:isSessionReused(), again.authorized)
          -- an answer: the server finished its side of the handshake too
          again:write("bye")
        end)
        again:on("data", function() end)
        again:on("close", function() process.exit(0) end)
      end)
    end)
    ]]))
    assert.are.equal("TLSv1.3\ttrue\tfalse\tfalse\tCN=localhost\tCN=luacluster test CA\t" ..
                     "DNS:localhost, IP Address:127.0.0.1\t95", line(out, "CONNECT"))
    assert.are.equal("echo:hello", line(out, "DATA"))
    assert.are.equal("true\ttrue", line(out, "AGAIN"))
    -- the server saw both; no client certificate was asked for
    assert.matches("ACCEPTED\tTLSv1.3\tlocalhost\tfalse\tfalse\tnil\tnil", out, 1, true)
    assert.matches("ACCEPTED\tTLSv1.3\tlocalhost\ttrue\tfalse\tnil\tnil", out, 1, true)
  end)

  it("is reached by openssl s_client, and asks for client certificates when told", function()
    local p = lc.run(echo_app([[print("PORT " .. PORT)]],
                              "requestCert = true, rejectUnauthorized = true, ca = CA"))
    local port = p:port()
    local base = ("openssl s_client -connect 127.0.0.1:%d -servername localhost -CAfile %s -quiet")
                 :format(port, set.path("ca"))
    -- a client with a certificate from the CA is let in and echoed
    local out = sh(("echo bye | %s -cert %s -key %s"):format(base, set.path("a"), set.path("a", "key")))
    assert.matches("echo:bye", out, 1, true)
    lc.wait_until(function() return p:output():find("ACCEPTED\tTLSv1.3\tlocalhost\tfalse\ttrue\tnil\tCN=a.test", 1, true) end,
                  5000, function() return "the server's view:\n" .. p:output() end)
    -- one without is refused
    out = sh(("echo bye | %s"):format(base))
    assert.is_nil(out:find("echo:bye", 1, true), out)
    assert.matches("certificate required", out, 1, true)
    -- one with a certificate the CA did not sign too
    out = sh(("echo bye | %s -cert %s -key %s"):format(base, set.path("selfsigned"),
                                                     set.path("selfsigned", "key")))
    assert.is_nil(out:find("echo:bye", 1, true), out)
  end)

  it("gives cosockets sslhandshake, with OpenResty's returns and errors", function()
    local out = run(echo_app([[
    local s = net.tcp()
    s:settimeout(3000)
    assert(s:connect("127.0.0.1", PORT))
    local session, err = s:sslhandshake(nil, "localhost", true, false, { ca = CA })
    print("HANDSHAKE", type(session), err)
    print("SEND", s:send("one\n"))
    print("RECV", s:receive("*l"))
    -- into the pool, TLS and all: the next connect takes it, and its
    -- handshake returns at once
    print("KEEPALIVE", s:setkeepalive())
    local s2 = net.tcp()
    s2:settimeout(3000)
    assert(s2:connect("127.0.0.1", PORT))
    print("REUSED", s2:getreusedtimes(), s2:sslhandshake(false, "localhost", true, false, { ca = CA }))
    print("RECV2", s2:send("two\n"), s2:receive("*l"))
    s2:close()
    -- a session from before resumes on a new connection
    local s3 = net.tcp()
    s3:settimeout(3000)
    assert(s3:connect("127.0.0.1", PORT, { pool = "another" }))
    print("RESUME", type(s3:sslhandshake(session, "localhost", true, false, { ca = CA })),
          s3:send("three\n"), s3:receive("*l"))
    s3:close()
    -- checks fail in OpenResty's words; ssl_verify false lets anything in
    local function try(name, verify, opts)
      local c = net.tcp()
      c:settimeout(3000)
      assert(c:connect("127.0.0.1", PORT, { pool = name }))
      print(name, c:sslhandshake(false, name == "WRONG" and "wrong.example" or "localhost", verify, false, opts))
      c:close()
    end
    try("SYSTEM", nil, nil)
    try("WRONG", true, { ca = CA })
    try("NOVERIFY", false, nil)
    -- not connected, or not a TLS server
    local c = net.tcp()
    print("UNCONNECTED", c:sslhandshake())
    process.exit(0)
    ]]))
    assert.are.equal("userdata\tnil", line(out, "HANDSHAKE"))
    assert.are.equal("4", line(out, "SEND"))
    assert.are.equal("echo:one", line(out, "RECV"))
    assert.are.equal("1", line(out, "KEEPALIVE"))
    assert.are.equal("1\ttrue", line(out, "REUSED"))
    assert.are.equal("4\techo:two", line(out, "RECV2"))
    assert.are.equal("userdata\t6\techo:three", line(out, "RESUME"))
    assert.matches("ACCEPTED\tTLSv1.3\tlocalhost\ttrue", out, 1, true)
    assert.are.equal("nil\t20: unable to get local issuer certificate", line(out, "SYSTEM"))
    assert.are.equal("nil\tcertificate host mismatch", line(out, "WRONG"))
    assert.are.equal("true", line(out, "NOVERIFY"))
    assert.are.equal("nil\tclosed", line(out, "UNCONNECTED"))
  end)

  it("times a cosocket handshake out against a server that never answers", function()
    local out = run([[
local srv = net.createServer(function(sock) end) -- takes the hello, says nothing
srv:listen(0, "127.0.0.1", function()
  setTimeout(function()
    local s = net.tcp()
    s:settimeouts(300, 3000, 3000)
    assert(s:connect("127.0.0.1", srv:address().port))
    local t0 = process.hrtimeNs()
    local ok, err = s:sslhandshake(nil, "localhost", false)
    print("HANDSHAKE", ok, err, (process.hrtimeNs() - t0) / 1e6 < 2000)
    process.exit(0)
  end, 1)
end)
]])
    assert.are.equal("nil\ttimeout\ttrue", line(out, "HANDSHAKE"))
  end)
end)
