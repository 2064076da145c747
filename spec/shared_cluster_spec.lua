-- Shared dicts across the processes of a cluster: increments from every
-- worker under load add up exactly; the dicts are the master's, so values
-- survive worker crashes, restarts, `luacluster reload`, and a binary
-- upgrade (which adopts the dicts the new master declares again).
local lc = require("lc")
local cjson = require("cjson")

local function command(control, ...)
  local argv = { ... }
  argv[#argv + 1] = "--control"
  argv[#argv + 1] = control
  local c, err = lc.start_split(argv)
  local code = c:wait_exit(60000)
  return code, c:output(), err()
end

local function control_path()
  return lc.tmpdir() .. "/ctl" .. tostring(lc.now()):gsub("%.", "") .. ".sock"
end

describe("shared dicts in a cluster", function()
  after_each(lc.cleanup)

  it("adds up every worker's incr exactly under thousands of concurrent requests", function()
    local app = lc.write_app([[
      local cluster = require("cluster")
      local hits = require("shared").hits
      local WORKERS = 3
      if cluster.isMaster then
        local listening = 0
        cluster.on("listening", function(_, address)
          listening = listening + 1
          if listening == WORKERS then print("PORT " .. address.port) end
        end)
        -- Once the load is over: every worker finishes and exits, then
        -- the dict is read with nobody writing.
        process.on("SIGUSR2", function()
          cluster.disconnect(function()
            local keys = {}
            for id = 1, WORKERS do keys[#keys + 1] = id .. "=" .. tostring(hits:get("w" .. id)) end
            print(("TOTAL %d KEYS %s"):format(hits:get("total"), table.concat(keys, " ")))
            process.exit(0)
          end)
        end)
        for _ = 1, WORKERS do cluster.fork() end
      else
        local mine = 0
        process.on("exit", function() print(("MINE %d=%d"):format(cluster.worker.id, mine)) end)
        http.createServer(function(req, res)
          for _ = 1, 10 do hits:incr("total", 1, 0) end
          hits:incr("w" .. cluster.worker.id, 1, 0)
          mine = mine + 1
          res:finish("ok")
        end):listen(0, "127.0.0.1")
      end
    ]])
    local p = lc.start({ "--shared", "hits=1m", app })
    local port = p:port(10000)
    local load = lc.load(port, { connections = 200, threads = 2, seconds = 3 })
    local clients = lc.clients(port, 4, 3)()
    local wrk = load:result()
    p:kill("SIGUSR2")
    local total, keys = p:wait_for("TOTAL (%d+) KEYS ([^\n]*)\n", 20000)
    assert.are.equal(0, p:wait_exit(10000))
    local counted, mine = 0, {}
    for id, n in p:output():gmatch("MINE (%d+)=(%d+)") do
      mine[tonumber(id)] = tonumber(n)
      counted = counted + tonumber(n)
    end
    assert.are.equal(3, #mine)
    -- the dict's total is exactly what the workers did, each worker's own
    -- key exactly its own count
    assert.are.equal(10 * counted, tonumber(total))
    assert.are.equal(("1=%d 2=%d 3=%d"):format(mine[1], mine[2], mine[3]), keys)
    -- and every answered request was counted
    assert.are.equal(0, clients.lost)
    assert.are.equal(0, wrk.failed)
    assert.is_true(counted >= clients.ok + wrk.requests,
                   ("counted %d < %d + %d"):format(counted, clients.ok, wrk.requests))
    assert.is_true(wrk.requests > 1000, "wrk: " .. wrk.requests)
    print(("\n    %d requests (%d from wrk's 200 connections), %d increments"):format(
      counted, wrk.requests, tonumber(total)))
  end)

  local SERVER = [[
    local d = require("shared").d
    local boot = d:incr("boots", 1, 0)
    local server = http.createServer(function(req, res)
      local key, value = req.url:match("^/set/([^/]+)/(.*)$")
      if key then
        d:set(key, { value = value, by = process.pid })
        return res:finish("ok")
      end
      key = req.url:match("^/get/(.+)$")
      local v = key and d:get(key)
      res:finish(v and (v.value .. " " .. v.by) or "none")
    end)
    server:listen(0, "127.0.0.1", function()
      print(("PORT %d pid %d boot %d"):format(server:address().port, process.pid, boot))
    end)
  ]]

  local function get(port, path)
    local res = assert(lc.http(port, "GET", path))
    assert.are.equal(200, res.status)
    return res.body
  end

  it("keeps its values across worker crashes and `luacluster reload`", function()
    local control = control_path()
    local p = lc.start({ "-w", "2", "--control", control, "--shared", "d=1m", lc.write_app(SERVER) })
    local port = p:port(10000)
    lc.wait_until(function() return p:count("PORT %d+ pid") == 2 end, 10000, "two workers")
    assert.are.equal("ok", get(port, "/set/user/ann"))
    local writer = tonumber(get(port, "/get/user"):match("ann (%d+)"))
    assert.is_number(writer)

    -- both workers die at once: the dict is the master's
    for pid in p:output():gmatch("pid (%d+) boot") do lc.kill(tonumber(pid), "SIGKILL") end
    lc.wait_until(function() return p:count("PORT %d+ pid") == 4 end, 10000, "two new workers")
    assert.are.equal("ann " .. writer, get(port, "/get/user"))

    local code, out, err = command(control, "reload")
    assert.are.equal(0, code, out .. err)
    lc.wait_until(function() return p:count("PORT %d+ pid") == 6 end, 10000, "reloaded workers")
    assert.are.equal("ann " .. writer, get(port, "/get/user"))
    -- six processes, one counter
    local boots = {}
    for b in p:output():gmatch("boot (%d+)") do boots[#boots + 1] = tonumber(b) end
    table.sort(boots)
    assert.are.same({ 1, 2, 3, 4, 5, 6 }, boots)
    p:kill("SIGTERM")
    assert.are.equal(0, p:wait_exit(10000))
  end)

  it("hands its dicts to the new master in a binary upgrade: same size kept, resized ones start empty, dropped ones go", function()
    local control = control_path()
    local app, dir = lc.write_app([[
      local shared = require("shared")
      local names = {}
      for name in pairs(shared) do names[#names + 1] = name end
      table.sort(names)
      local server = http.createServer(function(req, res) res:finish("ok") end)
      server:listen(0, "127.0.0.1", function()
        print(("BOOT pid=%d dicts=%s keep=%d resize=%d cap=%d"):format(process.pid,
          table.concat(names, ","), shared.keep:incr("boots", 1, 0),
          shared.resize:incr("boots", 1, 0), shared.resize:capacity()))
      end)
    ]])
    local conf = dir .. "/app.conf.lua"
    local function write_conf(shared)
      local f = assert(io.open(conf, "w"))
      f:write(('return { app = "app.lua", workers = 2, control = %q, shared = %s }\n')
              :format(control, shared))
      f:close()
    end
    write_conf('{ keep = "1m", resize = "1m", drop = "1m" }')
    local p = lc.start({ "start", conf })
    lc.wait_until(function() return p:count("BOOT ") == 2 end, 10000, "two workers")
    assert.matches("dicts=drop,keep,resize keep=2 resize=2 cap=1048576", p:output())

    write_conf('{ keep = "1m", resize = "2m", new = "64k" }')
    local code, out, err = command(control, "upgrade")
    assert.are.equal(0, code, out .. err)
    assert.are.equal(0, p:wait_exit(10000)) -- the old master leaves
    local log = p:output()
    assert.matches("binary upgrade: started .* with 1 listening socket%(s%) and 3 shared dict%(s%)", log)
    assert.matches("shared dict resize: its size changed %(1048576 to 2097152 bytes%) across the binary upgrade: it starts empty", log)
    assert.matches("binary upgrade: the shared dict drop is no longer declared: dropped", log)
    lc.wait_until(function() return p:count("BOOT ") == 4 end, 10000, "the new master's workers")
    -- per phase (in the order the workers started): the dicts, keep's and
    -- resize's boot counts, resize's capacity
    local phases = { {}, {} }
    local i = 0
    for dicts, keep, resize, cap in p:output():gmatch("BOOT pid=%d+ dicts=(%S+) keep=(%d+) resize=(%d+) cap=(%d+)") do
      i = i + 1
      local ph = phases[i <= 2 and 1 or 2]
      ph.dicts, ph.cap = (ph.dicts or dicts) == dicts and dicts or "differ", cap
      ph.keep = (ph.keep or 0) + tonumber(keep)
      ph.resize = (ph.resize or 0) + tonumber(resize)
    end
    assert.are.same({ dicts = "drop,keep,resize", cap = "1048576", keep = 1 + 2, resize = 1 + 2 }, phases[1])
    -- keep went on counting; resize and new are new dicts; drop is gone
    assert.are.same({ dicts = "keep,new,resize", cap = "2097152", keep = 3 + 4, resize = 1 + 2 }, phases[2])
    local stop = command(control, "stop")
    assert.are.equal(0, stop)
    local new_pid = tonumber(out:match("new master pid (%d+)"))
    lc.wait_until(function() return not lc.alive(new_pid) end, 10000, "the new master to stop")
  end)
end)

describe("shared dicts and socket activation", function()
  after_each(lc.cleanup)

  it("passes the dicts to workers beside sockets systemd passed on the same descriptor numbers", function()
    local sd = require("sd")
    local fd1, port1 = sd.listen_socket(0)
    local fd2, port2 = sd.listen_socket(0)
    local app = lc.write_app(([[
      local d = require("shared").d
      local memfds = {}
      for fd in io.popen("ls /proc/" .. process.pid .. "/fd"):read("*a"):gmatch("%%d+") do
        local target = io.popen("readlink /proc/" .. process.pid .. "/fd/" .. fd):read("*l") or ""
        if target:match("memfd") then memfds[#memfds + 1] = fd .. "=" .. target:match("luacluster:%%w+") end
      end
      table.sort(memfds)
      local function handler(req, res) res:finish(d:incr("hits", 1, 0) .. " " .. table.concat(memfds, " ")) end
      http.createServer(handler):listen(%d, "127.0.0.1")
      http.createServer(handler):listen(%d, "127.0.0.1", function() print("READY " .. process.pid) end)
    ]]):format(port1, port2))
    local p = sd.start_activated({ "-w", "2", "--shared", "d=64k", "--shared", "e=64k", app }, { fd1, fd2 })
    sd.close(fd1)
    sd.close(fd2)
    lc.wait_until(function() return p:count("READY") == 2 end, 10000, "two workers")
    assert.matches("passed a listening socket for 127%.0%.0%.1:" .. port1, p:output())
    local seen = {}
    for i = 1, 6 do
      local res = assert(lc.http(i % 2 == 0 and port1 or port2, "GET", "/"))
      local n, fds = res.body:match("^(%d+) (.*)$")
      seen[#seen + 1] = tonumber(n)
      assert.are.equal("4=luacluster:d 5=luacluster:e", fds)
    end
    assert.are.same({ 1, 2, 3, 4, 5, 6 }, seen)
  end)
end)

describe("shared dicts and --max-memory", function()
  after_each(lc.cleanup)

  it("does not count the dict pages a worker touched as its own memory", function()
    local control = control_path()
    local p = lc.start({ "-w", "1", "--max-memory", "30M", "--control", control,
                         "--shared", "d=128m", lc.write_app([[
      local d = require("shared").d
      local mib = string.rep("x", 1048576)
      for i = 1, 60 do assert(d:set("blob" .. i, mib)) end
      local rss = io.open("/proc/self/status"):read("*a"):match("VmRSS:%s*(%d+) kB")
      http.createServer(function(req, res) res:finish("ok") end):listen(0, "127.0.0.1", function()
        print("FILLED pid " .. process.pid .. " rss " .. rss)
      end)
    ]]) })
    local pid, rss_kb = p:wait_for("FILLED pid (%d+) rss (%d+)", 10000)
    -- the 60 MiB it wrote are resident in the worker...
    assert.is_true(tonumber(rss_kb) > 60 * 1024, "VmRSS " .. rss_kb .. " kB")
    -- ...but the master's samples (one a second) leave them out
    local worker
    lc.wait_until(function()
      local code, out = command(control, "status", "--json")
      if code ~= 0 then return false end
      worker = cjson.decode(out).workers[1]
      return worker and worker.uptime_ms > 2500 and worker.rss > 0
    end, 10000, "two memory samples of the worker")
    assert.are.equal(tonumber(pid), worker.pid)
    assert.is_true(worker.rss < 30 * 1048576, "rss " .. worker.rss)
    assert.is_nil(p:output():find("max-memory", 1, true))
  end)
end)

describe("apps/cache.lua", function()
  after_each(lc.cleanup)

  it("caches a user for every worker, for CACHE_TTL seconds, and asks the backend once", function()
    local p = lc.start({ "-w", "2", "--shared", "cache=16m", lc.source .. "/apps/cache.lua" },
                       { env = { PORT = 0, CACHE_TTL = 0.5 } })
    local port = tonumber(p:wait_for("cache listening on (%d+)", 10000))
    lc.wait_until(function() return p:count("cache listening on") == 2 end, 10000, "two workers")
    local function get(path, method)
      local res = assert(lc.http(port, method or "GET", path))
      return res.status, cjson.decode(res.body)
    end
    -- many clients at once for one user: one backend lookup
    local conns = {}
    for i = 1, 8 do
      conns[i] = assert(lc.connect(port))
      conns[i]:send("GET /users/42 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    end
    local answered, workers = 0, {}
    for i = 1, 8 do
      local res = assert(conns[i]:read_response(5000))
      local body = cjson.decode(res.body)
      assert.are.equal(200, res.status)
      assert.are.equal("user 42", body.user.name)
      answered = answered + 1
      workers[body.worker] = true
      conns[i]:close()
    end
    assert.are.equal(8, answered)
    local _, stats = get("/stats")
    assert.are.equal(1, stats.misses)
    assert.are.equal(7, stats.hits)
    -- from the cache on every worker now
    for _ = 1, 4 do
      local status, body = get("/users/42")
      assert.are.equal(200, status)
      assert.is_true(body.cached)
      workers[body.worker] = true
    end
    local n = 0
    for _ in pairs(workers) do n = n + 1 end
    assert.are.equal(2, n) -- both workers answered from the one cache
    -- deleted, then loaded again; expired after CACHE_TTL
    assert.are.equal(200, (get("/users/42", "DELETE")))
    assert.is_false(select(2, get("/users/42")).cached)
    lc.wait_until(function() return select(2, get("/users/42")).cached == false end, 5000,
                  "the cached user to expire")
    assert.are.equal(3, select(2, get("/stats")).misses)
    assert.are.equal(16 * 1048576, select(2, get("/stats")).capacity)
  end)
end)
