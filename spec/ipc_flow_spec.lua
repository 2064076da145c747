-- How messages flow on a channel: in order both ways while connections are
-- handed over the same channel, bounded (send() returns false past the
-- high-water mark, "drain" follows, and a hard cap refuses), and send
-- callbacks that run even for a send made inside another send's callback.
local lc = require("lc")

local MIB = 1024 * 1024

describe("IPC flow", function()
  after_each(lc.cleanup)

  it("keeps messages in order both ways while connections are handed to the worker", function()
    local p = lc.run([[
      -- Message i: its sequence number, and a size that varies; every 50th
      -- one is big enough to be sent from its buffer rather than copied.
      local function body(i) return ("%08d"):format(i):rep(i % 50 == 0 and 3000 or i % 13) end
      local function streamer(send, on_drain)
        local st = { sent = 0, stopped = false }
        local function burst()
          local room = true
          for _ = 1, 200 do
            if st.stopped or not room then break end
            st.sent = st.sent + 1
            room = send({ seq = st.sent, body = body(st.sent) })
          end
          if st.stopped then return end
          if room then setImmediate(burst) else on_drain(burst) end
        end
        burst()
        return st
      end
      local function checker()
        local c = { next = 1, bad = 0 }
        function c.check(m)
          if m.seq ~= c.next or m.body ~= body(c.next) then c.bad = c.bad + 1 end
          c.next = m.seq + 1
        end
        return c
      end

      if cluster.isWorker then
        local c, st, requests = checker(), nil, 0
        http.createServer(function(req, res)
          requests = requests + 1
          res:finish("ok " .. requests)
          if requests == 300 then
            st.stopped = true
            process.send({ stop = true, sent = st.sent })
          end
        end):listen(0)
        process.on("message", function(m)
          if m.stop then
            print(("WORKER GOT %d OF %d BAD %d"):format(c.next - 1, m.sent, c.bad))
          else
            c.check(m)
          end
        end)
        st = streamer(process.send, function(fn) process:once("drain", fn) end)
        return
      end

      local w = cluster.fork()
      local c, st = checker(), nil
      w:on("listening", function(address)
        print("PORT " .. address.port)
        st = streamer(function(m) return w:send(m) end, function(fn) w:once("drain", fn) end)
      end)
      w:on("message", function(m)
        if m.stop then
          st.stopped = true
          w:send({ stop = true, sent = st.sent })
          print(("MASTER GOT %d OF %d BAD %d"):format(c.next - 1, m.sent, c.bad))
          setTimeout(function() w:disconnect() end, 200)
        else
          c.check(m)
        end
      end)
    ]])
    local port = p:port()
    for i = 1, 300 do
      local res = assert(lc.http(port, "GET", "/"))
      assert.are.equal(200, res.status)
      assert.are.equal("ok " .. i, res.body)
    end
    local got, sent, bad = p:wait_for("MASTER GOT (%d+) OF (%d+) BAD (%d+)", 20000)
    assert.are.equal(sent, got)
    assert.are.equal("0", bad)
    assert.is_true(tonumber(got) > 300)
    got, sent, bad = p:wait_for("WORKER GOT (%d+) OF (%d+) BAD (%d+)", 20000)
    assert.are.equal(sent, got)
    assert.are.equal("0", bad)
    assert.is_true(tonumber(got) > 300)
    assert.are.equal(0, p:wait_exit(10000))
  end)

  it("returns false past the high-water mark and emits drain once all is written, in the master", function()
    local p = lc.run([[
      local CHUNK = ("m"):rep(256 * 1024)
      if cluster.isWorker then
        local got = 0
        process.on("message", function(m)
          got = got + 1
          if m == "last" then print("WORKER GOT " .. got) end
        end)
        return
      end
      local w = cluster.fork()
      w:on("online", function()
        -- A stopped worker reads nothing: what is sent piles up.
        process.kill(w.process.pid, "SIGSTOP")
        local sent, drains = 0, 0
        while w:send(CHUNK) do sent = sent + 1 end
        sent = sent + 1
        print("FALSE AFTER " .. sent)
        w:on("drain", function()
          drains = drains + 1
          print("DRAIN " .. drains)
          w:send("last")
          w:disconnect()
        end)
        setTimeout(function()
          print("DRAINS WHILE STOPPED " .. drains)
          process.kill(w.process.pid, "SIGCONT")
        end, 300)
      end)
    ]])
    local sent = tonumber(p:wait_for("FALSE AFTER (%d+)"))
    -- Over 1 MiB waits (beyond what the kernel took), far from the hard cap.
    assert.is_true(sent * 256 * 1024 > MIB and sent * 256 * 1024 < 16 * MIB, tostring(sent))
    assert.are.equal("0", p:wait_for("DRAINS WHILE STOPPED (%d+)"))
    assert.are.equal("1", p:wait_for("DRAIN (%d+)"))
    assert.are.equal(tostring(sent + 1), p:wait_for("WORKER GOT (%d+)"))
    assert.are.equal(0, p:wait_exit())
    assert.are.equal(0, p:count("DRAIN 2"))
  end)

  it("returns false past the high-water mark and emits drain on process, in a worker", function()
    local p = lc.run([[
      local CHUNK = ("w"):rep(256 * 1024)
      if cluster.isWorker then
        local sent = 0
        while process.send(CHUNK) do sent = sent + 1 end
        sent = sent + 1
        print("WORKER FALSE AFTER " .. sent)
        process:once("drain", function()
          print("WORKER DRAIN")
          process.send("last")
        end)
        return
      end
      local w, got = cluster.fork(), 0
      w:on("online", function()
        -- A master that does not read for a while.
        local t = os.clock()
        while os.clock() - t < 0.3 do end
      end)
      w:on("message", function(m)
        got = got + 1
        if m == "last" then
          print("MASTER GOT " .. got)
          w:disconnect()
        end
      end)
    ]])
    local sent = tonumber(p:wait_for("WORKER FALSE AFTER (%d+)"))
    assert.is_true(sent * 256 * 1024 > MIB, tostring(sent))
    p:wait_for("WORKER DRAIN")
    assert.are.equal(tostring(sent + 1), p:wait_for("MASTER GOT (%d+)"))
    assert.are.equal(0, p:wait_exit())
  end)

  it("refuses a send once 64 MiB wait to be written, and the channel goes on", function()
    local p = lc.run(([[
      local CHUNK = ("c"):rep(MIB_SIZE)
      if cluster.isWorker then
        local got = 0
        process.on("message", function(m)
          got = got + 1
          if m == "after" then print("WORKER GOT " .. got) end
        end)
        return
      end
      local w = cluster.fork()
      w:on("online", function()
        process.kill(w.process.pid, "SIGSTOP")
        local accepted, ok, err = 0, true, nil
        while ok and accepted < 1000 do
          ok, err = pcall(w.send, w, CHUNK)
          if ok then accepted = accepted + 1 end
        end
        print("ACCEPTED " .. accepted)
        print("ERROR " .. tostring(err))
        w:once("drain", function()
          w:send("after")
          w:disconnect()
        end)
        process.kill(w.process.pid, "SIGCONT")
      end)
    ]]):gsub("MIB_SIZE", tostring(MIB)), nil)
    local accepted = tonumber(p:wait_for("ACCEPTED (%d+)", 10000))
    -- 64 MiB queued, plus what the kernel had taken.
    assert.is_true(accepted >= 64 and accepted <= 72, tostring(accepted))
    local err = p:wait_for("ERROR ([^\n]*)")
    assert.truthy(err:find("cannot send message: %d+ bytes already wait to be written to worker 1"), err)
    assert.truthy(err:find("the limit is 67108864", 1, true), err)
    assert.truthy(err:find('wait for "drain"', 1, true), err)
    assert.are.equal(tostring(accepted + 1), p:wait_for("WORKER GOT (%d+)", 20000))
    assert.are.equal(0, p:wait_exit(10000))
  end)

  -- Messages that arrive together are handed to Lua together: an error in a
  -- listener for one of them must not lose the ones after it.
  for _, side in ipairs({ "MASTER", "WORKER" }) do
    it("goes on with the messages after one whose listener raised, in the " .. side:lower(), function()
      local p = lc.run(([[
        local got = {}
        local function on_message(m, done)
          got[#got + 1] = m
          if m == 3 then error("boom " .. m) end
          if m == 6 then
            print("GOT " .. table.concat(got, ","))
            done()
          end
        end
        process.on("uncaughtException", function(err) print("CAUGHT " .. tostring(err):match("boom %d")) end)
        if cluster.isWorker then
          if "SIDE" == "WORKER" then
            process.on("message", function(m) on_message(m, function() cluster.worker:disconnect() end) end)
          else
            for i = 1, 6 do process.send(i) end
          end
          return
        end
        local w = cluster.fork()
        if "SIDE" == "MASTER" then
          w:on("message", function(m) on_message(m, function() w:disconnect() end) end)
        else
          w:on("online", function() for i = 1, 6 do w:send(i) end end)
        end
      ]]):gsub("SIDE", side), nil)
      assert.are.equal("boom 3", p:wait_for("CAUGHT ([^\n]*)"))
      assert.are.equal("1,2,3,4,5,6", p:wait_for("GOT ([%d,]+)"))
      assert.are.equal(0, p:wait_exit())
    end)
  end

  -- Nothing else happens in either process (the other side only reads): a
  -- callback that waited for another event would never run.
  for _, side in ipairs({ "MASTER", "WORKER" }) do
    it("runs the callback of a send made inside another send's callback, in the " .. side:lower(), function()
      local p = lc.run(([[
        local function chain(send)
          send("first", function(err)
            print("FIRST " .. tostring(err))
            send("second", function(err2)
              print("SECOND " .. tostring(err2))
              send("third", function(err3) print("THIRD " .. tostring(err3)) end)
            end)
          end)
        end
        if cluster.isWorker then
          if "SIDE" == "WORKER" then chain(process.send) end
          return
        end
        local w = cluster.fork()
        w:on("online", function()
          if "SIDE" == "MASTER" then chain(function(m, fn) return w:send(m, fn) end) end
        end)
      ]]):gsub("SIDE", side), nil)
      for _, which in ipairs({ "FIRST", "SECOND", "THIRD" }) do
        assert.are.equal("nil", p:wait_for(which .. " (%a+)", 3000))
      end
      p:kill("SIGKILL")
      p:wait_exit()
    end)
  end
end)
