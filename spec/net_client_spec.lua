-- net.connect / net.createConnection and dns.lookup, Node's names and
-- events, against servers in the same process.
local lc = require("lc")

local run = lc.run_ok

local line = lc.field

describe("net.connect", function()
  after_each(lc.cleanup)

  it("connects (looking the name up), sends what was written early, and emits in order", function()
    local out = run([[
      local events = {}
      local server
      server = net.createServer(function(sock)
        sock:on("data", function(d) sock:finish("echo:" .. d) end)
      end):listen(0, "127.0.0.1", function()
        local port = server:address().port
        local sock
        sock = net.connect({ host = "localhost", port = port }, function()
          events[#events + 1] = "connect"
          print("ADDRESSES", sock.remoteAddress, sock.remotePort == port,
                sock.localAddress, type(sock.localPort))
        end)
        print("CONNECTING", sock.connecting, tostring(sock.remoteAddress))
        print("WRITE", sock:write("early"))
        sock:on("ready", function() events[#events + 1] = "ready" end)
        sock:on("data", function(d) events[#events + 1] = "data:" .. d end)
        sock:on("end", function() events[#events + 1] = "end" end)
        sock:on("close", function(had_error)
          events[#events + 1] = "close:" .. tostring(had_error)
          print("EVENTS", table.concat(events, ","))
          process.exit(0)
        end)
      end)
    ]])
    assert.are.equal("true\tnil", line(out, "CONNECTING"))
    assert.are.equal("false", line(out, "WRITE"))
    assert.are.equal("127.0.0.1\ttrue\t127.0.0.1\tnumber", line(out, "ADDRESSES"))
    assert.are.equal("connect,ready,data:echo:early,end,close:false", line(out, "EVENTS"))
  end)

  it("gives Node's error codes and messages naming the address", function()
    local out = run([[
      local pending = 2
      local function done() pending = pending - 1 if pending == 0 then process.exit(0) end end
      local refused = net.createConnection(1, "127.0.0.1")
      refused:on("error", function(err)
        print("REFUSED", err.code, err.message, err.address, err.port, err.syscall, tostring(err))
      end)
      refused:on("close", function(had_error) print("REFUSED_CLOSE", had_error) done() end)
      local unknown = net.connect({ host = "nonexistent.invalid", port = 80 })
      unknown:on("error", function(err) print("UNKNOWN", err.code, err.message) end)
      unknown:on("close", function(had_error) print("UNKNOWN_CLOSE", had_error) done() end)
      -- no "error" listener: logged, the process goes on
      net.connect(1, "127.0.0.1")
    ]])
    assert.are.equal("ECONNREFUSED\tconnect ECONNREFUSED 127.0.0.1:1\t127.0.0.1\t1\tconnect\t" ..
                     "connect ECONNREFUSED 127.0.0.1:1", line(out, "REFUSED"))
    assert.are.equal("true", line(out, "REFUSED_CLOSE"))
    assert.are.equal("ENOTFOUND\tgetaddrinfo ENOTFOUND nonexistent.invalid", line(out, "UNKNOWN"))
    assert.are.equal("true", line(out, "UNKNOWN_CLOSE"))
    assert.is_truthy(out:match("connect ECONNREFUSED 127.0.0.1:1 %(no 'error' listener%)"))
  end)

  it("emits timeout after the idle time and closes on destroy", function()
    local out = run([[
      local server
      server = net.createServer(function() end):listen(0, "127.0.0.1", function()
        local t0 = process.hrtimeNs()
        local sock = net.connect({ port = server:address().port, host = "127.0.0.1", timeout = 300 })
        sock:on("timeout", function()
          print("TIMEOUT", math.floor((process.hrtimeNs() - t0) / 1e6))
          sock:destroy()
        end)
        sock:on("close", function(had_error) print("CLOSE", had_error) process.exit(0) end)
        sock:setNoDelay(true)
        sock:setKeepAlive(true, 1000)
      end)
    ]])
    local ms = tonumber(line(out, "TIMEOUT"))
    assert.is_true(ms >= 250 and ms < 5000, "timeout after " .. ms .. " ms") -- 300 asked
    assert.are.equal("false", line(out, "CLOSE"))
  end)

  it("tells IP addresses from names", function()
    local out = run([[
      print("ISIP", net.isIP("127.0.0.1"), net.isIP("::1"), net.isIP("example.com"),
            net.isIPv4("10.0.0.1"), net.isIPv6("10.0.0.1"))
    ]])
    assert.are.equal("4\t6\t0\ttrue\tfalse", line(out, "ISIP"))
  end)
end)

describe("dns.lookup", function()
  after_each(lc.cleanup)

  it("answers through a callback, or returns in a coroutine", function()
    local out = run([[
      dns.lookup("localhost", function(err, address, family)
        print("CALLBACK", tostring(err), address, family)
        dns.lookup("nonexistent.invalid", function(err2)
          print("CALLBACK_ERR", err2.code, err2.message, err2.hostname)
          dns.lookup("localhost", { all = true }, function(err3, list)
            print("ALL", list[1].address, list[1].family)
            local address2, family2 = dns.lookup("127.0.0.1")
            print("COROUTINE", address2, family2)
            print("COROUTINE_ERR", dns.lookup("nonexistent.invalid"))
            process.exit(0)
          end)
        end)
      end)
      print("MAIN", pcall(dns.lookup, "localhost"))
    ]])
    assert.are.equal("nil\t127.0.0.1\t4", line(out, "CALLBACK"))
    assert.are.equal("ENOTFOUND\tgetaddrinfo ENOTFOUND nonexistent.invalid\tnonexistent.invalid",
                     line(out, "CALLBACK_ERR"))
    assert.are.equal("127.0.0.1\t4", line(out, "ALL"))
    assert.are.equal("127.0.0.1\t4", line(out, "COROUTINE"))
    assert.are.equal("nil\tnonexistent.invalid could not be resolved (ENOTFOUND)",
                     line(out, "COROUTINE_ERR"))
    assert.is_truthy(line(out, "MAIN"):match("^false\t.*dns.lookup%(host%) waits"))
  end)
end)
