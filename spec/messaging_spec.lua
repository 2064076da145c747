-- Cluster messaging on one host, over real processes: broadcast (script and
-- managed mode), publish/subscribe with several topics and unsubscribing,
-- request/reply both ways (both styles, timeouts, late replies, errors),
-- values that cannot be sent, order per sender, and a subscriber that does
-- not read.
local lc = require("lc")

-- The lines of p's output that match pattern, sorted.
local function lines(p, pattern)
  local out = {}
  for line in p:output():gmatch("[^\n]+") do
    if line:match(pattern) then out[#out + 1] = line end
  end
  table.sort(out)
  return out
end

describe("cluster messaging", function()
  after_each(lc.cleanup)

  describe("broadcast", function()
    it("reaches every worker from the master, not the master itself", function()
      local p = lc.run([[
        if cluster.isMaster then
          local online = 0
          cluster.on("message", function(w, m) print("MASTER GOT", m) end)
          cluster.on("online", function()
            online = online + 1
            if online == 3 then
              print("BROADCAST", cluster.broadcast({ hello = "all", n = 42 }))
              setTimeout(function() cluster.disconnect() end, 300)
            end
          end)
          for _ = 1, 3 do cluster.fork() end
        else
          process.on("message", function(m)
            print(("WORKER %d GOT %s %d"):format(cluster.worker.id, m.hello, m.n))
          end)
        end
      ]])
      assert.equal(0, p:wait_exit(5000))
      assert.same({ "WORKER 1 GOT all 42", "WORKER 2 GOT all 42", "WORKER 3 GOT all 42" },
                  lines(p, "^WORKER"))
      assert.truthy(p:output():match("BROADCAST\ttrue"))
      assert.falsy(p:output():match("MASTER GOT"))
    end)

    it("reaches every worker from a worker, the sender included, and strings as they are", function()
      local p = lc.run([[
        if cluster.isMaster then
          local got = 0
          cluster.on("message", function(w, m)
            if m == "seen" then
              got = got + 1
              if got == 9 then cluster.disconnect() end
            end
          end)
          for _ = 1, 3 do cluster.fork() end
        else
          process.on("message", function(m)
            print(("WORKER %d GOT %s"):format(cluster.worker.id, m))
            process.send("seen")
          end)
          setTimeout(function()
            cluster.broadcast("from " .. cluster.worker.id .. " \0 bytes")
          end, 200)
        end
      ]])
      assert.equal(0, p:wait_exit(5000))
      local got = lines(p, "^WORKER")
      assert.equal(9, #got)
      for w = 1, 3 do
        for from = 1, 3 do
          assert.truthy(p:output():find(("WORKER %d GOT from %d \0 bytes"):format(w, from), 1, true))
        end
      end
    end)

    it("reaches every worker in managed mode, routed by the C master", function()
      local q = lc.start({ "-w", "3", lc.write_app([[
        local me = process.env.LUACLUSTER_INSTANCE
        local seen = {}
        process.on("message", function(m)
          seen[#seen + 1] = m.from
          if #seen == 3 then
            table.sort(seen)
            print(("INSTANCE %s GOT %s"):format(me, table.concat(seen, ",")))
          end
        end)
        http.createServer(function(_, res) res:finish("ok") end):listen(0, function()
          setTimeout(function() cluster.broadcast({ from = me }) end, 300)
        end)
      ]]) })
      lc.wait_until(function() return #lines(q, "^INSTANCE") == 3 end, 5000,
                    function() return "three workers each getting three broadcasts:\n" .. q:output() end)
      assert.same({ "INSTANCE 0 GOT 0,1,2", "INSTANCE 1 GOT 0,1,2", "INSTANCE 2 GOT 0,1,2" },
                  lines(q, "^INSTANCE"))
    end)
  end)

  describe("publish and subscribe", function()
    it("delivers a topic to its subscribers only, with who sent it, and stops after unsubscribe", function()
      local p = lc.run([[
        local function log(...) print(table.concat({ ... }, " ")) end
        if cluster.isMaster then
          cluster.subscribe("b", function(m, from, host)
            log("MASTER b", m.n, from, host == cluster.host and "here" or host)
          end)
          local ready = 0
          cluster.on("message", function(w, m)
            if m == "subscribed" then
              ready = ready + 1
              if ready == 3 then
                cluster.publish("a", { n = 1 })
                cluster.publish("b", { n = 2 })
                cluster.publish("nobody", { n = 3 })
                -- worker 1 publishes, then unsubscribes one listener and a topic
                cluster.workers[1]:send("go")
              end
            elseif m == "unsubscribed" then
              cluster.publish("a", { n = 5 })
              cluster.publish("b", { n = 6 })
              setTimeout(function() cluster.disconnect() end, 300)
            end
          end)
          for _ = 1, 3 do cluster.fork() end
        else
          local id = cluster.worker.id
          local function on(topic, tag)
            return function(m, from, host)
              log(("W%d %s %s"):format(id, topic, tag), m.n, from, host == cluster.host and "here" or host)
            end
          end
          local a1 = on("a", "x")
          if id == 1 or id == 2 then cluster.subscribe("a", a1) cluster.subscribe("a", on("a", "y")) end
          if id == 2 or id == 3 then cluster.subscribe("b", on("b", "x")) end
          process.on("message", function(m)
            if m ~= "go" then return end
            cluster.publish("b", { n = 4 })
            -- unsubscribe takes effect at the master in order with what
            -- follows on the channel
            cluster.unsubscribe("a", a1)
            print("UNSUB MISSING", cluster.unsubscribe("zzz"), cluster.unsubscribe("a", print))
            process.send("unsubscribed")
          end)
          if id == 3 then
            cluster.subscribe("b", print)
            print("UNSUB ALL", cluster.unsubscribe("b"))
            cluster.subscribe("b", on("b", "x"))
          end
          process.send("subscribed")
        end
      ]])
      assert.equal(0, p:wait_exit(5000))
      assert.same({
        "MASTER b 2 master here", "MASTER b 4 1 here", "MASTER b 6 master here",
        "W1 a x 1 master here", "W1 a y 1 master here", "W1 a y 5 master here",
        "W2 a x 1 master here", "W2 a x 5 master here", "W2 a y 1 master here", "W2 a y 5 master here",
        "W2 b x 2 master here", "W2 b x 4 1 here", "W2 b x 6 master here",
        "W3 b x 2 master here", "W3 b x 4 1 here", "W3 b x 6 master here",
      }, lines(p, "^[MW][A%d]"))
      assert.truthy(p:output():match("UNSUB MISSING\tfalse\tfalse"))
      assert.truthy(p:output():match("UNSUB ALL\ttrue"))
    end)

    it("routes publishes between workers in managed mode, to subscribers only", function()
      local p = lc.start({ "-w", "3", lc.write_app([[
        local me = tonumber(process.env.LUACLUSTER_INSTANCE)
        local got = {}
        cluster.subscribe(me == 2 and "odd" or "even", function(m, from)
          got[#got + 1] = m
          if #got == 3 then
            print(("INSTANCE %d GOT %s"):format(me, table.concat(got, ",")))
          end
        end)
        -- each publishes once it has heard every instance's "ready"
        -- broadcast: their subscriptions, sent before it, are in place
        local readies = 0
        process.on("message", function(m)
          if m ~= "ready" then return end
          readies = readies + 1
          if readies == 3 then
            for i = 1, 3 do cluster.publish(i % 2 == 0 and "even" or "odd", me * 10 + i) end
          end
        end)
        http.createServer(function(_, res) res:finish("ok") end):listen(0, function()
          cluster.broadcast("ready")
        end)
      ]]) })
      lc.wait_until(function() return #lines(p, "^INSTANCE") == 3 end, 5000,
                    function() return "three subscribers:\n" .. p:output() end)
      -- instance 2 hears "odd" (1 and 3 of everyone), the others "even"
      local got = {}
      for _, line in ipairs(lines(p, "^INSTANCE")) do
        local me, list = line:match("INSTANCE (%d) GOT (.*)")
        local values = {}
        for v in list:gmatch("%d+") do values[#values + 1] = tonumber(v) end
        table.sort(values)
        got[tonumber(me)] = values
      end
      assert.equal(3, #got[0])
      assert.same(got[0], got[1])
      for _, v in ipairs(got[0]) do assert.equal(0, v % 2) end
      for _, v in ipairs(got[2]) do assert.equal(1, v % 2) end
    end)

    it("keeps each sender's order across messages, broadcasts and publishes", function()
      local p = lc.run([[
        local N = 3000
        if cluster.isMaster then
          local done = 0
          cluster.on("message", function(w, m)
            if type(m) == "table" and m.result then
              print(("W%d %s"):format(w.id, m.result))
              done = done + 1
              if done == 2 then cluster.disconnect() end
            end
          end)
          cluster.fork()
          cluster.fork()
        else
          local id = cluster.worker.id
          -- worker 2 checks what worker 1 sends: broadcasts and publishes
          -- numbered in one sequence
          local next_n, bad = 1, 0
          local function check(m)
            if type(m) == "table" and m.n then
              if m.n ~= next_n then bad = bad + 1 end
              next_n = m.n + 1
              if m.n == N then process.send({ result = ("GOT %d BAD %d"):format(next_n - 1, bad) }) end
            end
          end
          process.on("message", check)
          cluster.subscribe("seq", check)
          if id == 1 then
            process.send("ready")
            setTimeout(function()
              local i = 0
              local function burst()
                while i < N do
                  i = i + 1
                  local room
                  if i % 3 == 0 then room = cluster.broadcast({ n = i })
                  else room = cluster.publish("seq", { n = i, pad = ("x"):rep(i % 200) }) end
                  if not room then return process:once("drain", burst) end
                end
              end
              burst()
            end, 300)
          end
        end
      ]])
      assert.equal(0, p:wait_exit(10000))
      assert.same({ "W1 GOT 3000 BAD 0", "W2 GOT 3000 BAD 0" }, lines(p, "^W%d GOT"))
    end)
  end)

  describe("request/reply", function()
    it("answers a worker's request in the master, waiting in a coroutine or with a callback", function()
      local p = lc.run([[
        if cluster.isMaster then
          cluster.on("request", function(worker, msg, reply)
            if msg.op == "add" then
              reply({ sum = msg.a + msg.b, by = worker.id })
            elseif msg.op == "fail" then
              reply(nil, "no such thing")
            elseif msg.op == "later" then
              setTimeout(function() print("REPLY AGAIN", reply("late"), reply("twice")) end, 50)
            end
          end)
          cluster.on("exit", function() cluster.disconnect() end)
          cluster.fork()
        else
          setTimeout(function()
            local r, err = process.request({ op = "add", a = 2, b = 40 })
            print("COROUTINE", r.sum, r.by, err)
            print("ERROR", process.request({ op = "fail" }))
            print("LATER", process.request({ op = "later" }, { timeout = 2000 }))
            process.request({ op = "add", a = 1, b = 1 }, function(err, reply)
              print("CALLBACK", err, reply.sum, coroutine.running() ~= nil)
              process.request({ op = "fail" }, { timeout = 500 }, function(e, v)
                print("CALLBACK ERROR", e, v)
                process.exit(0)
              end)
            end)
            print("CALLBACK RETURNS FIRST")
          end, 10)
        end
      ]])
      assert.equal(0, p:wait_exit(5000))
      local out = p:output()
      assert.truthy(out:match("COROUTINE\t42\t1\tnil"))
      assert.truthy(out:match("ERROR\tnil\tno such thing"))
      assert.truthy(out:match("LATER\tlate"))
      assert.truthy(out:match("REPLY AGAIN\ttrue\tfalse"))
      assert.truthy(out:match("CALLBACK RETURNS FIRST.*CALLBACK\tnil\t2\ttrue"))
      assert.truthy(out:match("CALLBACK ERROR\tno such thing\tnil"))
    end)

    it("answers the master's request in a worker, both styles, and says when the worker is gone", function()
      local p = lc.run([[
        if cluster.isMaster then
          local w = cluster.fork()
          w:on("online", function()
            setTimeout(function()
              print("COROUTINE", w:request({ x = 20 }))
              print("TABLE", w:request({ x = "table" }).nested[1])
              print("ERROR", w:request({ x = "fail" }))
              w:request({ x = 1 }, { timeout = 1000 }, function(err, v)
                print("CALLBACK", err, v)
                -- a request that is still waiting when the worker goes
                w:request({ x = "never" }, function(e, v2)
                  print("GONE", e, v2)
                  print("AFTER EXIT", w:request({ x = 2 }))
                  w:request({ x = 3 }, function(e3) print("AFTER EXIT CALLBACK", e3) end)
                end)
                setTimeout(function() w:kill("SIGKILL") end, 100)
              end)
            end, 50)
          end)
        else
          process.on("request", function(msg, reply)
            if msg.x == "fail" then return reply(nil, "refused") end
            if msg.x == "table" then return reply({ nested = { "yes" } }) end
            if msg.x == "never" then return end
            sleep(10) -- a listener may wait before it answers
            reply(msg.x * 2)
          end)
        end
      ]])
      assert.equal(0, p:wait_exit(5000))
      local out = p:output()
      assert.truthy(out:match("COROUTINE\t40\n"))
      assert.truthy(out:match("TABLE\tyes"))
      assert.truthy(out:match("ERROR\tnil\trefused"))
      assert.truthy(out:match("CALLBACK\tnil\t2"))
      assert.truthy(out:match("GONE\tclosed\tnil"))
      assert.truthy(out:match("AFTER EXIT\tnil\tclosed"))
      assert.truthy(out:match("AFTER EXIT CALLBACK\tclosed"))
    end)

    it("matches each reply to its request with hundreds in flight, answered out of order", function()
      local p = lc.run([[
        if cluster.isMaster then
          local held = {}
          cluster.on("request", function(_, msg, reply)
            if #held == 300 then return reply(msg * 2) end
            held[#held + 1] = { msg = msg, reply = reply }
            if #held == 300 then
              -- answer newest first; every third one too late
              for i = #held, 1, -1 do
                local h = held[i]
                if h.msg % 3 == 0 then
                  setTimeout(function() h.reply(h.msg * 2) end, 400)
                else
                  h.reply(h.msg * 2)
                end
              end
            end
          end)
          cluster.on("exit", function() cluster.disconnect() end)
          cluster.fork()
        else
          local ok, timeouts, wrong, left = 0, 0, 0, 300
          for i = 1, 300 do
            setImmediate(function()
              local v, err = process.request(i, { timeout = i % 3 == 0 and 200 or 5000 })
              if err == "timeout" then timeouts = timeouts + 1
              elseif v == i * 2 then ok = ok + 1
              else wrong = wrong + 1 end
              left = left - 1
              if left == 0 then
                sleep(400) -- the late replies come and go nowhere
                print(("OK %d TIMEOUTS %d WRONG %d"):format(ok, timeouts, wrong))
                print("AFTER", process.request(7))
                process.exit(0)
              end
            end)
          end
        end
      ]])
      assert.equal(0, p:wait_exit(8000))
      assert.truthy(p:output():match("OK 200 TIMEOUTS 100 WRONG 0"), p:output())
      assert.truthy(p:output():match("AFTER\t14"))
    end)

    it("fails a request nobody answers with timeout after its timeout, and drops the late reply", function()
      local p = lc.run([[
        local function ms(t0) local d = process.hrtime(t0) return d[1] * 1000 + d[2] / 1e6 end
        if cluster.isMaster then
          local held = {}
          cluster.on("request", function(worker, msg, reply)
            if msg == "slow" then
              -- answers after the requester gave up
              setTimeout(function() print("LATE REPLY SENT", reply("too late")) end, 400)
            elseif msg == "never" then
              held[#held + 1] = reply
            else
              reply("ok " .. msg)
            end
          end)
          cluster.on("exit", function() cluster.disconnect() end)
          local w = cluster.fork()
          w:on("online", function()
            setTimeout(function()
              local t0 = process.hrtime()
              local v, err = w:request("quiet", { timeout = 300 })
              print(("MASTER TIMEOUT %s %s %d"):format(tostring(v), err, ms(t0)))
            end, 10)
          end)
        else
          process.on("request", function() end) -- hears, never answers
          setTimeout(function()
            local t0 = process.hrtime()
            local v, err = process.request("never", { timeout = 250 })
            print(("TIMEOUT %s %s %d"):format(tostring(v), err, ms(t0)))
            t0 = process.hrtime()
            v, err = process.request("slow", { timeout = 200 })
            print(("SLOW %s %s %d"):format(tostring(v), err, ms(t0)))
            -- the late reply to "slow" arrives meanwhile and goes nowhere
            sleep(400)
            print("NEXT", process.request("fine"))
            process.request("never", { timeout = 100 }, function(e) print("CALLBACK TIMEOUT", e) end)
            sleep(300)
            process.exit(0)
          end, 10)
        end
      ]])
      assert.equal(0, p:wait_exit(6000))
      local out = "\n" .. p:output()
      local v, err, took = out:match("\nTIMEOUT (%S+) (%S+) (%d+)")
      assert.equal("nil", v)
      assert.equal("timeout", err)
      assert.is_true(tonumber(took) >= 245 and tonumber(took) < 1500, took)
      v, err, took = out:match("SLOW (%S+) (%S+) (%d+)")
      assert.equal("timeout", err)
      assert.is_true(tonumber(took) >= 195 and tonumber(took) < 1500, took)
      assert.truthy(out:match("LATE REPLY SENT\ttrue"))
      assert.truthy(out:match("NEXT\tok fine"))
      assert.truthy(out:match("CALLBACK TIMEOUT\ttimeout"))
      v, err, took = out:match("MASTER TIMEOUT (%S+) (%S+) (%d+)")
      assert.equal("timeout", err)
      assert.is_true(tonumber(took) >= 295 and tonumber(took) < 1500, took)
      assert.falsy(out:match("too late"))
    end)

    it("fails at once with no request listener, in script and managed mode", function()
      local p = lc.run([[
        if cluster.isMaster then
          local w = cluster.fork()
          cluster.on("exit", function() cluster.disconnect() end)
          w:on("online", function()
            setTimeout(function() print("TO WORKER", w:request("x", { timeout = 3000 })) end, 10)
          end)
        else
          local t0 = process.hrtime()
          setTimeout(function()
            print("TO MASTER", process.request("x", { timeout = 3000 }))
            local d = process.hrtime(t0)
            print("FAST", d[1] < 2)
            sleep(100)
            process.exit(0)
          end, 10)
        end
      ]])
      assert.equal(0, p:wait_exit(5000))
      assert.truthy(p:output():match("TO MASTER\tnil\tno request listener"))
      assert.truthy(p:output():match("TO WORKER\tnil\tno request listener"))
      assert.truthy(p:output():match("FAST\ttrue"))

      local q = lc.start({ "-w", "1", lc.write_app([[
        http.createServer(function(_, res) res:finish("ok") end):listen(0, function()
          local t0 = process.hrtime()
          print("MANAGED", process.request({ q = 1 }, { timeout = 5000 }))
          print("MANAGED FAST", process.hrtime(t0)[1] < 2)
        end)
      ]]) })
      q:wait_for("MANAGED FAST[^\n]*\n")
      assert.truthy(q:output():match("MANAGED\tnil\tno request listener"))
      assert.truthy(q:output():match("MANAGED FAST\ttrue"))
    end)

    it("says what is wrong with a call: no coroutine, bad options, a bad topic", function()
      local p = lc.run([[
        local function try(f, ...)
          local ok, err = pcall(f, ...)
          print("ERR", (tostring(err):gsub("^[^:]*:%d+: ", "")))
        end
        if cluster.isMaster then
          local w = cluster.fork()
          try(w.request, w, "x")
          try(cluster.subscribe, "", print)
          try(cluster.subscribe, ("t"):rep(1025), print)
          try(cluster.subscribe, 42, print)
          try(cluster.subscribe, "ok", "not a function")
          try(cluster.publish, nil, 1)
          w:on("message", function() cluster.disconnect() end)
        else
          try(process.request, "x")
          try(process.request, "x", { timeout = -1 }, print)
          try(process.request, "x", { timeout = "soon" }, print)
          try(process.request, "x", 5, print)
          try(process.request, "x", {}, "nope")
          process.send("done")
        end
      ]])
      assert.equal(0, p:wait_exit(5000))
      local errs = lines(p, "^ERR")
      local out = table.concat(errs, "\n")
      assert.truthy(out:find("worker:request() waits, so it must run inside a coroutine", 1, true))
      assert.truthy(out:find("process.request() waits, so it must run inside a coroutine", 1, true))
      assert.truthy(out:find("topic must be a string of 1 to 1024 bytes, got 0 bytes", 1, true))
      assert.truthy(out:find("got 1025 bytes", 1, true))
      assert.truthy(out:find("got number", 1, true))
      assert.truthy(out:find("got nil", 1, true))
      assert.truthy(out:find("listener must be a function, got string", 1, true))
      assert.truthy(out:find("timeout must be a number of milliseconds > 0, got -1", 1, true))
      assert.truthy(out:find("got soon", 1, true))
      assert.truthy(out:find("options must be a table", 1, true))
      assert.truthy(out:find("callback must be a function", 1, true))
    end)
  end)

  describe("what cannot be sent", function()
    it("raises in the sender for broadcast, publish, request and reply, and the channel goes on", function()
      local p = lc.run([[
        local function try(what, f, ...)
          local ok, err = pcall(f, ...)
          print(what, ok, (tostring(err):gsub("^[^:]*:%d+: ", "")))
        end
        if cluster.isMaster then
          cluster.on("request", function(worker, msg, reply)
            try("REPLY", reply, { fn = print })
            print("REPLIED", reply("fine after all"))
          end)
          try("MASTER BROADCAST", cluster.broadcast, { co = coroutine.create(print) })
          try("MASTER PUBLISH", cluster.publish, "t", print)
          local w = cluster.fork()
          w:on("online", function()
            try("MASTER REQUEST", w.request, w, { ud = io.stdout }, function() end)
          end)
          cluster.on("message", function(_, m) if m == "done" then cluster.disconnect() end end)
        else
          setTimeout(function()
            try("BROADCAST", cluster.broadcast, print)
            try("PUBLISH", cluster.publish, "t", { f = print })
            try("REQUEST", process.request, { f = print }, function() end)
            local deep = {}
            local t = deep
            for _ = 1, 200 do t.next = {} t = t.next end
            try("DEEP", cluster.broadcast, deep)
            print("STILL WORKS", process.request("x"))
            process.send("done")
          end, 10)
        end
      ]])
      assert.equal(0, p:wait_exit(5000))
      local out = p:output()
      for _, what in ipairs({ "MASTER BROADCAST", "MASTER PUBLISH", "MASTER REQUEST", "BROADCAST",
                              "PUBLISH", "REQUEST", "REPLY", "DEEP" }) do
        assert.truthy(out:match("\n" .. what .. "\tfalse\tcannot send message: ") or
                      out:match("^" .. what .. "\tfalse\tcannot send message: "), what .. ":\n" .. out)
      end
      assert.truthy(out:match("BROADCAST\tfalse\tcannot send message: a function cannot be sent"))
      assert.truthy(out:match("MASTER REQUEST\tfalse\tcannot send message: a userdata cannot be sent"))
      assert.truthy(out:match("REPLIED\ttrue"))
      assert.truthy(out:match("STILL WORKS\tfine after all"))
    end)
  end)

  describe("bounds and bad peers", function()
    it("skips a subscriber that does not read, with a warning, while the others get everything", function()
      local p = lc.run([[
        local MIB = ("m"):rep(1024 * 1024)
        local N = 40
        if cluster.isMaster then
          local w1, w2
          cluster.on("message", function(w, m)
            if m == "subscribed" and w == w2 then
              -- worker 1 stops reading (stopped by a signal)
              process.kill(w1.process.pid, "SIGSTOP")
              w2:send("go")
            elseif type(m) == "table" and m.got then
              print(("W%d GOT %d"):format(w.id, m.got))
              if w == w2 then process.kill(w1.process.pid, "SIGCONT") end
              if w == w1 then cluster.disconnect() end
            end
          end)
          w1 = cluster.fork()
          w1:on("message", function(m) if m == "subscribed" then w2 = cluster.fork() end end)
        else
          local got = 0
          cluster.subscribe("big", function(m, from)
            got = got + 1
            if got == N and cluster.worker.id == 2 then process.send({ got = got }) end
          end)
          if cluster.worker.id == 1 then
            process.on("message", function() end)
            -- once awake again, it reports what reached it
            setInterval(function()
              if got > 0 then
                local before = got
                setTimeout(function() if got == before then process.send({ got = got }) end end, 300)
              end
            end, 400)
          end
          process.on("message", function(m)
            if m ~= "go" then return end
            local i = 0
            local function burst()
              while i < N do
                i = i + 1
                if not cluster.publish("big", MIB) then return process:once("drain", burst) end
              end
            end
            burst()
          end)
          process.send("subscribed")
        end
      ]])
      assert.equal(0, p:wait_exit(20000))
      local out = p:output()
      assert.equal("40", out:match("W2 GOT (%d+)"))
      local got1 = tonumber(out:match("W1 GOT (%d+)"))
      assert.is_true(got1 > 0 and got1 < 40, tostring(got1))
      assert.truthy(out:match("worker 1 %(pid %d+%) is not reading: %d+ bytes wait to be written to it"))
    end)

    it("disconnects a worker that writes a malformed bus record; the others go on", function()
      local p = lc.run([[
        if cluster.isMaster then
          local w1, w2 = cluster.fork(), cluster.fork()
          local online = 0
          cluster.on("online", function()
            online = online + 1
            if online == 2 then w1:send("write it") end
          end)
          w1:on("exit", function(code) print("W1 EXIT " .. tostring(code)) w2:send("broadcast") end)
          w2:on("message", function(m) print("W2 GOT " .. m) cluster.disconnect() end)
        else
          local ffi = require("ffi")
          ffi.cdef("long write(int fd, const void *buf, size_t n);")
          process.on("message", function(m)
            if m == "write it" then
              -- a well-framed broadcast whose body is not a Lua value
              local head = "LC\6\0\0\0\0\17" .. "\1\1\0\0\0\0\0\0" .. ("\0"):rep(8) .. "\19"
              print("WROTE " .. tostring(tonumber(ffi.C.write(3, head, #head))))
            elseif m == "broadcast" then
              cluster.broadcast("still here")
            else
              process.send(m)
            end
          end)
        end
      ]])
      assert.equal(0, p:wait_exit(5000))
      local out = p:output()
      assert.truthy(out:match("WROTE 25"))
      assert.truthy(out:match("W1 EXIT"))
      assert.truthy(out:match("W2 GOT still here"))
      assert.truthy(out:find("%[master%][^\n]*worker 1[^\n]*unknown value tag in message"), out)
    end)
  end)
end)
