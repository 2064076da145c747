-- The master<->worker channel end to end, over real processes: order and
-- completeness under load, every kind of message, big messages and the size
-- limit, values that cannot be sent, send callbacks, a worker that writes
-- garbage, and processes that go away. (ipc_values_spec.lua: what values keep
-- on the way; ipc_flow_spec.lua: order with connections, bounded sends.)
local lc = require("lc")

-- Lua source the apps share: deep comparison and a deterministic payload.
local COMMON = [[
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- n bytes that say where they are: a corrupted or shifted piece shows.
local function pattern(n, tag)
  local parts = {}
  for i = 1, math.ceil(n / 8) do parts[i] = ("%s%07d"):format(tag, i % 1e7) end
  return table.concat(parts):sub(1, n)
end
]]

local function app(source)
  return lc.write_app(COMMON .. source)
end

describe("IPC", function()
  after_each(lc.cleanup)

  it("delivers 10000 messages each way complete and in order", function()
    local p = lc.start({ app([[
      local N = 10000
      local function check(side, state, m)
        if type(m) ~= "table" or m.n ~= state.next or m.from ~= side
           or m.pad ~= pattern(m.n % 97, side:sub(1, 1)) then
          state.bad = state.bad + 1
        end
        state.next = state.next + 1
      end
      if cluster.isMaster then
        local w = cluster.fork()
        local got, done = { next = 1, bad = 0 }, 0
        local function finish()
          done = done + 1
          if done == 2 then w:disconnect() end
        end
        w:on("online", function()
          for i = 1, N do w:send({ n = i, from = "master", pad = pattern(i % 97, "m") }) end
        end)
        w:on("message", function(m)
          if m.worker_got then
            print(("WORKER GOT %d BAD %d"):format(m.worker_got, m.bad))
            return finish()
          end
          check("worker", got, m)
          if got.next > N then
            print(("MASTER GOT %d BAD %d"):format(got.next - 1, got.bad))
            finish()
          end
        end)
      else
        local got = { next = 1, bad = 0 }
        process.on("message", function(m)
          check("master", got, m)
          if got.next > N then process.send({ worker_got = got.next - 1, bad = got.bad }) end
        end)
        for i = 1, N do process.send({ n = i, from = "worker", pad = pattern(i % 97, "w") }) end
      end
    ]]) })
    assert.are.same({ "10000", "0" }, { p:wait_for("MASTER GOT (%d+) BAD (%d+)", 10000) })
    assert.are.same({ "10000", "0" }, { p:wait_for("WORKER GOT (%d+) BAD (%d+)", 10000) })
    assert.are.equal(0, p:wait_exit())
  end)

  it("delivers every kind of value equal to what was sent", function()
    local p = lc.start({ app([[
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local long_array = {}
      for i = 1, 1000 do long_array[i] = i * 3 end
      local values = {
        { nested = { a = { b = { c = { 1, 2, { d = "deep" } } } } } },
        { 1, "two", true, false, { x = 1 }, { 3, { 4, { 5 } } } },
        { ["key with spaces"] = 1, [""] = "empty key", ["ключ"] = "значение" },
        {},
        { empty = {}, list = { {}, { {} } } },
        long_array,
        "plain",
        "",
        'quotes " and \\ backslash / slash',
        "newline\nline\r\ntab\tbell\a backspace\b formfeed\f",
        "unicode: é ü ñ — 日本語 😀 \u{2028}\u{2029}",
        "NUL \0 inside",
        table.concat(bytes), -- every byte value, invalid UTF-8 included
        0, 42, -17, 3.5, -0.25, 1e-7, 1.5e300, -2.5e-300, 123456789012,
        true,
        false,
        { int = 7, float = 0.125, neg = -1e10, t = true, f = false, s = "s" },
      }
      if cluster.isMaster then
        local w = cluster.fork()
        local back = 0
        w:on("online", function()
          for _, v in ipairs(values) do w:send({ v = v }) end
          for _, v in ipairs(values) do w:send(v) end -- and at the top level
        end)
        w:on("message", function(m)
          back = back + 1
          local i, v = (back - 1) % #values + 1, m
          if back <= #values then v = m.v end
          if not same(v, values[i]) then print("DIFFERENT " .. i) end
          if back == 2 * #values then
            print("CHECKED " .. back)
            w:disconnect()
          end
        end)
      else
        local got = 0
        process.on("message", function(m)
          got = got + 1
          local i, v = (got - 1) % #values + 1, m
          if got <= #values then v = m.v end
          if not same(v, values[i]) then print("WORKER DIFFERENT " .. i) end
          process.send(m) -- back as it came
        end)
      end
    ]]) })
    local n = tonumber(p:wait_for("CHECKED (%d+)"))
    assert.is_true(n > 40)
    assert.are.equal(0, p:wait_exit())
    assert.are.equal(0, p:count("DIFFERENT"), p:output())
  end)

  it("keeps numbers exact: integers up to 2^53 and doubles to the last bit", function()
    local p = lc.start({ app([[
      local values = { 2^53, -2^53, 2^53 - 1, 123456789012345, 1234567890123456,
                       1 / 3, 0.1 + 0.2, math.pi, 1e21 + 2^20, 5e-324 }
      if cluster.isMaster then
        local w = cluster.fork()
        w:on("online", function() w:send(values) end)
        w:on("message", function(m)
          for i, v in ipairs(values) do
            if m[i] ~= v then print(("INEXACT %d: sent %.17g got %.17g"):format(i, v, m[i])) end
          end
          print("CHECKED")
          w:disconnect()
        end)
      else
        process.on("message", function(m) process.send(m) end)
      end
    ]]) })
    p:wait_for("CHECKED")
    assert.are.equal(0, p:wait_exit())
    local inexact = {}
    for line in p:output():gmatch("INEXACT [^\n]*") do inexact[#inexact + 1] = line end
    assert.are.same({}, inexact)
  end)

  it("delivers a 1 MiB message intact both ways", function()
    local p = lc.start({ app([[
      local MIB = 1024 * 1024
      if cluster.isMaster then
        local w = cluster.fork()
        w:on("online", function() w:send({ data = pattern(MIB, "M") }) end)
        w:on("message", function(m)
          if m.worker_saw then
            print("WORKER SAW " .. tostring(m.worker_saw))
          else
            print(("MASTER SAW %d %s"):format(#m.data, tostring(m.data == pattern(MIB, "W"))))
            w:disconnect()
          end
        end)
      else
        process.on("message", function(m)
          process.send({ worker_saw = #m.data == MIB and m.data == pattern(MIB, "M") })
          process.send({ data = pattern(MIB, "W") })
        end)
      end
    ]]) })
    p:wait_for("WORKER SAW true")
    assert.are.same({ "1048576", "true" }, { p:wait_for("MASTER SAW (%d+) (%a+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  describe("with --max-message-size 1000", function()
    it("refuses a bigger message in the master with the size and the limit, and keeps the channel", function()
      local p = lc.start({ "--max-message-size", "1000", app([[
        if cluster.isMaster then
          local w = cluster.fork()
          w:on("online", function()
            local ok, err = pcall(w.send, w, string.rep("x", 1500))
            print("SEND OK " .. tostring(ok))
            print("SEND ERROR " .. tostring(err))
            w:send({ after = "the refused one" })
          end)
          w:on("message", function(m)
            print("REPLY " .. tostring(m.got))
            w:disconnect()
          end)
          w:on("disconnect", function() print("DISCONNECTED") end)
        else
          process.on("message", function(m) process.send({ got = m.after }) end)
        end
      ]]) })
      assert.are.equal("false", p:wait_for("SEND OK (%a+)"))
      local err = p:wait_for("SEND ERROR ([^\n]*)")
      assert.truthy(err:find("cannot send message", 1, true), err)
      assert.truthy(err:find("1500", 1, true), "the size (a string goes as its 1500 bytes): " .. err)
      assert.truthy(err:find("1000", 1, true), "the limit: " .. err)
      assert.are.equal("the refused one", p:wait_for("REPLY ([^\n]*)"))
      assert.are.equal(0, p:wait_exit())
      assert.are.equal(0, p:count("channel closed"))
    end)

    it("refuses a bigger message in a worker with the size and the limit, and keeps the channel", function()
      local p = lc.start({ "--max-message-size", "1000", app([[
        if cluster.isMaster then
          local w = cluster.fork()
          w:on("message", function(m)
            print("MASTER GOT " .. tostring(m.after))
            w:disconnect()
          end)
          w:on("disconnect", function() print("DISCONNECTED") end)
        else
          local ok, err = pcall(process.send, string.rep("y", 1500))
          print("SEND OK " .. tostring(ok))
          print("SEND ERROR " .. tostring(err))
          process.send({ after = "the refused one" })
        end
      ]]) })
      assert.are.equal("false", p:wait_for("SEND OK (%a+)"))
      local err = p:wait_for("SEND ERROR ([^\n]*)")
      assert.truthy(err:find("cannot send message", 1, true), err)
      assert.truthy(err:find("1500", 1, true), "the size (a string goes as its 1500 bytes): " .. err)
      assert.truthy(err:find("1000", 1, true), "the limit: " .. err)
      assert.are.equal("the refused one", p:wait_for("MASTER GOT ([^\n]*)"))
      assert.are.equal(0, p:wait_exit())
      assert.are.equal(0, p:count("channel closed"))
    end)
  end)

  it("raises a clear error for a function or a cycle, in either process, and both keep working", function()
    local p = lc.start({ app([[
      local function try_bad(send)
        local cycle = {}
        cycle.self = cycle
        local ok1, e1 = pcall(send, { f = function() end })
        local ok2, e2 = pcall(send, cycle)
        local ok3, e3 = pcall(send, print)
        return ok1 or ok2 or ok3, { e1, e2, e3 }
      end
      if cluster.isMaster then
        local w = cluster.fork()
        w:on("online", function()
          local any_ok, errs = try_bad(function(v) return w:send(v) end)
          print("MASTER ANY OK " .. tostring(any_ok))
          for _, e in ipairs(errs) do print("MASTER ERROR " .. tostring(e)) end
          w:send({ still = "working" })
        end)
        w:on("message", function(m)
          if m.errors then
            for _, e in ipairs(m.errors) do print("WORKER ERROR " .. e) end
            print("WORKER ANY OK " .. tostring(m.any_ok))
          elseif m.echo then
            print("ECHO " .. m.echo)
            w:disconnect()
          end
        end)
      else
        local any_ok, errs = try_bad(process.send)
        process.send({ any_ok = any_ok, errors = errs })
        process.on("message", function(m) process.send({ echo = m.still }) end)
      end
    ]]) })
    assert.are.equal("working", p:wait_for("ECHO (%a+)"))
    assert.are.equal("false", p:wait_for("MASTER ANY OK (%a+)"))
    assert.are.equal("false", p:wait_for("WORKER ANY OK (%a+)"))
    assert.are.equal(0, p:wait_exit())
    for _, side in ipairs({ "MASTER", "WORKER" }) do
      local errs = {}
      for e in p:output():gmatch(side .. " ERROR ([^\n]*)") do errs[#errs + 1] = e end
      assert.are.equal(3, #errs)
      for _, e in ipairs(errs) do
        assert.truthy(e:find("cannot send message: ", 1, true), side .. ": " .. e)
      end
      assert.truthy(errs[1]:find("function"), errs[1])
      assert.truthy(errs[2]:find("nesting") or errs[2]:find("cycl"), errs[2])
    end
  end)

  it("runs send callbacks once per message, in order, after the send returns", function()
    local p = lc.start({ app([[
      local function send_five(send, log)
        local st = { calls = {}, sync = false }
        for i = 1, 5 do
          local returned = false
          -- The third is big: written over several loop turns.
          local msg = { i = i, pad = i == 3 and pattern(2 * 1024 * 1024, "c") or nil }
          send(msg, function(err)
            if not returned then st.sync = true end
            st.calls[#st.calls + 1] = i .. "=" .. tostring(err)
          end)
          returned = true
        end
        return st
      end
      local function report(side, st)
        print(("%s CALLBACKS %s SYNC %s"):format(side, table.concat(st.calls, ","), tostring(st.sync)))
      end
      if cluster.isMaster then
        local w = cluster.fork()
        local st
        w:on("online", function() st = send_five(function(m, f) return w:send(m, f) end) end)
        w:on("message", function(m)
          if m.got == 5 then
            w:send({ ping = true }) -- one more turn, for late extra calls
          elseif m.pong then
            report("MASTER", st)
            report("WORKER", m.st)
            w:disconnect()
          end
        end)
      else
        local st
        process.on("message", function(m)
          if m.i then
            if m.i == 5 then
              st = send_five(process.send)
              process.send({ got = 5 })
            end
          elseif m.ping then
            process.send({ pong = true, st = st })
          end
        end)
      end
    ]]) })
    local want = "1=nil,2=nil,3=nil,4=nil,5=nil"
    assert.are.same({ want, "false" }, { p:wait_for("MASTER CALLBACKS (%S*) SYNC (%a+)") })
    assert.are.same({ want, "false" }, { p:wait_for("WORKER CALLBACKS (%S*) SYNC (%a+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("runs pending send callbacks with an error when the channel closes first", function()
    local p = lc.start({ app([[
      if cluster.isMaster then
        local w = cluster.fork()
        local calls = {}
        w:on("online", function()
          -- Stopped, the worker reads nothing: 8 MiB cannot all be written.
          process.kill(w.process.pid, "SIGSTOP")
          w:send({ big = string.rep("b", 8 * 1024 * 1024) }, function(err)
            calls[#calls + 1] = "big=" .. tostring(err)
          end)
          w:send({ small = 1 }, function(err)
            calls[#calls + 1] = "small=" .. tostring(err)
          end)
          w:kill("SIGKILL")
        end)
        w:on("exit", function(code, signal)
          print("EXIT " .. tostring(signal))
          setImmediate(function() print("CALLBACKS " .. table.concat(calls, ",")) end)
        end)
      end
    ]]) })
    assert.are.equal("SIGKILL", p:wait_for("EXIT (%S+)"))
    local calls = p:wait_for("CALLBACKS ([^\n]*)")
    local big, small = calls:match("^big=([^,]*),small=([^,]*)$")
    assert.truthy(big, "both callbacks, big first, once each: " .. calls)
    assert.are_not.equal("nil", big)
    assert.are_not.equal("nil", small)
    assert.are.equal(0, p:wait_exit())
  end)

  it("disconnects a worker that writes garbage on its channel, and the rest keeps working", function()
    local p = lc.start({ app([[
      if cluster.isMaster then
        local w1, w2 = cluster.fork(), cluster.fork()
        local online = 0
        cluster.on("online", function()
          online = online + 1
          if online == 2 then w1:send("write garbage") end
        end)
        w1:on("disconnect", function() print("W1 DISCONNECT") end)
        w1:on("exit", function(code, signal)
          print(("W1 EXIT %s %s"):format(tostring(code), tostring(signal)))
          w2:send("ping")
        end)
        w2:on("message", function(m)
          print("W2 SAYS " .. m)
          w2:disconnect()
        end)
        w2:on("exit", function(code) print("W2 EXIT " .. tostring(code)) end)
      else
        local ffi = require("ffi")
        ffi.cdef("long write(int fd, const void *buf, size_t n);")
        process.on("message", function(m)
          if m == "write garbage" then
            local junk = "GET / HTTP/1.1\r\n\r\n"
            print("WROTE " .. tostring(tonumber(ffi.C.write(3, junk, #junk))))
          else
            process.send("pong from " .. cluster.worker.id)
          end
        end)
      end
    ]]) })
    assert.are.equal("18", p:wait_for("WROTE (%d+)"))
    p:wait_for("W1 DISCONNECT")
    assert.are.same({ "0", "nil" }, { p:wait_for("W1 EXIT (%S+) (%S+)") })
    assert.are.equal("pong from 2", p:wait_for("W2 SAYS ([^\n]*)"))
    assert.are.equal("0", p:wait_for("W2 EXIT (%S+)"))
    assert.are.equal(0, p:wait_exit())
    local out = p:output()
    -- The master says which worker and why, in the channel's words.
    assert.truthy(out:find("%[master%][^\n]*worker 1[^\n]*bad frame magic"), out)
    assert.truthy(out:find("W1 DISCONNECT.*W1 EXIT"), "disconnect before exit:\n" .. out)
  end)

  it("disconnects a worker that sends a well-framed message that is not a Lua value", function()
    local p = lc.start({ app([[
      if cluster.isMaster then
        local w1, w2 = cluster.fork(), cluster.fork()
        local online = 0
        cluster.on("online", function()
          online = online + 1
          if online == 2 then w1:send("write a bad message") end
        end)
        w1:on("disconnect", function() print("W1 DISCONNECT") end)
        w1:on("exit", function(code)
          print("W1 EXIT " .. tostring(code))
          w2:send("ping")
        end)
        w2:on("message", function(m)
          print("W2 SAYS " .. m)
          w2:disconnect()
        end)
      else
        local ffi = require("ffi")
        ffi.cdef("long write(int fd, const void *buf, size_t n);")
        process.on("message", function(m)
          if m == "write a bad message" then
            -- A MESSAGE frame of 5 bytes: a string said to be 91 bytes long.
            local frame = "LC\1\0\0\0\0\5{bad}"
            print("WROTE " .. tostring(tonumber(ffi.C.write(3, frame, #frame))))
          else
            process.send("pong from " .. cluster.worker.id)
          end
        end)
      end
    ]]) })
    assert.are.equal("13", p:wait_for("WROTE (%d+)"))
    p:wait_for("W1 DISCONNECT")
    assert.are.equal("0", p:wait_for("W1 EXIT (%S+)"))
    assert.are.equal("pong from 2", p:wait_for("W2 SAYS ([^\n]*)"))
    assert.are.equal(0, p:wait_exit())
    assert.truthy(p:output():find("%[master%][^\n]*worker 1[^\n]*message ends inside a value"),
                  p:output())
  end)

  it("leaves no worker alive when the master is killed with SIGKILL", function()
    local p = lc.start({ app([[
      if cluster.isMaster then
        local pids, online = {}, 0
        for _ = 1, 3 do
          local w = cluster.fork()
          pids[#pids + 1] = w.process.pid
          w:on("online", function()
            online = online + 1
            if online == 3 then print("PIDS " .. table.concat(pids, " ")) end
          end)
        end
      end
    ]]) })
    local pids = {}
    for pid in p:wait_for("PIDS ([%d ]+)"):gmatch("%d+") do pids[#pids + 1] = tonumber(pid) end
    assert.are.equal(3, #pids)
    for _, pid in ipairs(pids) do assert.is_true(lc.alive(pid)) end
    p:kill("SIGKILL")
    p:wait_exit()
    lc.wait_until(function()
      for _, pid in ipairs(pids) do if lc.alive(pid) then return false end end
      return true
    end, 2000, "every worker to die with its master")
  end)

  it("ends a worker whose master calls process.exit()", function()
    local p = lc.start({ app([[
      if cluster.isMaster then
        local w = cluster.fork()
        w:on("online", function()
          print("PID " .. w.process.pid)
          process.exit(3)
        end)
      else
        -- A worker with work pending of its own: only the master's end stops it.
        setInterval(function() end, 1000)
      end
    ]]) })
    local pid = tonumber(p:wait_for("PID (%d+)"))
    assert.are.equal(3, p:wait_exit())
    lc.wait_until(function() return not lc.alive(pid) end, 2000, "the worker to go away")
  end)

  it("delivers what a worker sent right before process.exit()", function()
    local p = lc.start({ app([[
      local N = 200
      if cluster.isMaster then
        local w = cluster.fork()
        local got, bad = 0, 0
        w:on("message", function(m)
          got = got + 1
          if m.n ~= got or m.data ~= pattern(m.n % 4 == 0 and 65536 or 10, "x") then bad = bad + 1 end
        end)
        w:on("exit", function(code) print(("EXIT %s GOT %d BAD %d"):format(tostring(code), got, bad)) end)
      else
        for i = 1, N do process.send({ n = i, data = pattern(i % 4 == 0 and 65536 or 10, "x") }) end
        process.exit(0)
      end
    ]]) })
    assert.are.same({ "0", "200", "0" }, { p:wait_for("EXIT (%S+) GOT (%d+) BAD (%d+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("has process.send only in a worker", function()
    local p = lc.start({ app([[
      if cluster.isMaster then
        print("MASTER SEND " .. type(process.send))
        local w = cluster.fork()
        w:on("message", function(m)
          print("WORKER SEND " .. m)
          w:disconnect()
        end)
      else
        process.send(type(process.send))
      end
    ]]) })
    assert.are.equal("nil", p:wait_for("MASTER SEND (%a+)"))
    assert.are.equal("function", p:wait_for("WORKER SEND (%a+)"))
    assert.are.equal(0, p:wait_exit())
  end)
end)
