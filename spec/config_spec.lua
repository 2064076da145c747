-- The config file: `luacluster start CONF` runs what a Lua table says (flags
-- override it), `luacluster check CONF` validates it as `nginx -t` does and
-- names the key that is wrong.
local lc = require("lc")
local cjson = require("cjson")

local APP = [[
  local server = http.createServer(function(req, res)
    res:finish(cjson_like())
  end)
  function cjson_like()
    return ("pid=%d greeting=%s args=%s instance=%s"):format(process.pid,
      tostring(os.getenv("GREETING")), table.concat(process.argv, ",", 3),
      tostring(process.env.LUACLUSTER_INSTANCE))
  end
  server:listen(tonumber(os.getenv("PORT") or "0"), "127.0.0.1", function()
    print("PORT " .. server:address().port .. " pid " .. process.pid)
  end)
]]

-- Writes app.lua and a config beside it; returns the config's path.
local function config(text, app_source)
  local _, dir = lc.write_app(app_source or APP)
  local path = dir .. "/app.conf.lua"
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path, dir
end

local function run(...)
  local p, err = lc.start_split({ ... })
  local code = p:wait_exit(10000)
  return code, p:output(), err()
end

describe("luacluster check", function()
  after_each(lc.cleanup)

  it("accepts a good config and says what would run", function()
    local path, dir = config([[
      return {
        app = "app.lua", args = { "--verbose", 3 }, workers = 2, sched = "sticky",
        kill_timeout = 2000, listen_timeout = 5000, heartbeat_timeout = 0,
        wait_ready = false, max_memory = "256M", max_message_size = 1048576,
        env = { GREETING = "hi", DEBUG = false, LEVEL = 3 },
        control = "/tmp/x.sock", metrics = "127.0.0.1:9100",
        redis = "redis://user:p%40ss@[::1]:6380/2", cluster_name = "shop-eu.1",
      }
    ]])
    local code, out, err = run("check", path)
    assert.are.equal(0, code, err)
    assert.matches(path:gsub("%p", "%%%0") .. ": ok %(app " .. dir:gsub("%p", "%%%0") ..
                   "/app%.lua, 2 worker%(s%), sched sticky, metrics on 127%.0%.0%.1:9100%)", out)
  end)

  it("takes globals as well as a returned table", function()
    local path = config('app = "app.lua"\nworkers = "max"\n')
    local code, out, err = run("check", path)
    assert.are.equal(0, code, err)
    assert.matches("one worker per CPU", out)
  end)

  local bad = {
    { "return { workers = 2 }", "app: missing" },
    { 'return { app = "app.lua", wokers = 2 }', 'unknown key "wokers" %(known: app,' },
    { 'return { app = "app.lua", [1] = "x" }', "unknown key 1" },
    { 'return { app = "app.lua", workers = "four" }', 'workers: wants a count from 1 to 4096 or "max", got "four"' },
    { 'return { app = "app.lua", workers = 0 }', "workers: wants a count" },
    { 'return { app = "app.lua", workers = 2.5 }', "workers: wants a count" },
    { 'return { app = "app.lua", sched = "fastest" }', 'sched: wants rr, none, reuseport or sticky, got "fastest"' },
    { 'return { app = "app.lua", kill_timeout = -1 }', "kill_timeout: wants milliseconds" },
    { 'return { app = "app.lua", listen_timeout = "10s" }', 'listen_timeout: wants milliseconds %(a whole number up to a day%), got "10s"' },
    { 'return { app = "app.lua", wait_ready = "yes" }', "wait_ready: wants true or false" },
    { 'return { app = "app.lua", max_memory = "lots" }', 'max_memory: wants a size in bytes' },
    { 'return { app = "app.lua", args = "--verbose" }', "args: wants a list of strings" },
    { 'return { app = "app.lua", args = { {} } }', "args: %[1%] wants a string, got a table" },
    { 'return { app = "app.lua", env = { ["1BAD"] = "x" } }', "env: wants variable names as keys" },
    { 'return { app = "app.lua", env = { GOOD = {} } }', "env: GOOD wants a string, number or boolean" },
    { 'return { app = "app.lua", metrics = "9100" }', 'metrics: wants "ADDRESS:PORT"' },
    { 'return { app = "app.lua", control = 5 }', "control: wants a socket path" },
    { 'return { app = "app.lua", shared = "cache=10M" }', 'shared: wants a table of NAME = SIZE %(cache = "64m"%), got "cache=10M"' },
    { 'return { app = "app.lua", shared = { cache = "lots" } }', 'shared: cache: wants a size %(bytes, or "64m", "1g"%), got "lots"' },
    { 'return { app = "app.lua", shared = { cache = "1k" } }', "shared: cache: a shared dict's size is from 32k to 128g, got 1024 bytes" },
    { 'return { app = "app.lua", shared = { ["my cache"] = "1m" } }', 'shared: bad name "my cache" %(1 to 64 letters, digits, _ or %-' },
    { 'return { app = "app.lua", shared = { "1m" } }', "shared: wants dict names as keys, got 1" },
    { 'return { app = "app.lua", redis = "127.0.0.1:6379" }', "redis: a Redis URL looks like redis://%[user:password@%]host%[:port%]%[/db%]" },
    { 'return { app = "app.lua", redis = "redis://h:99999" }', "redis: .*the port is a number from 1 to 65535" },
    { 'return { app = "app.lua", redis = "rediss://h" }', "redis: .*TLS%) is not supported" },
    { 'return { app = "app.lua", redis = 6379 }', "redis: wants a string, got 6379" },
    { 'return { app = "app.lua", redis = "redis://h", cluster_name = "my shop" }', "cluster_name: 1 to 64 letters, digits" },
    { 'return { app = "app.lua", log = 5 }', "log: wants a file path, got 5" },
    { 'return { app = "app.lua", min_uptime = "1s" }', 'min_uptime: wants milliseconds' },
    { 'return { app = "app.lua", max_restarts = -1 }', "max_restarts: wants a count" },
    { 'return { app = "missing.lua" }', "app: cannot read .*missing%.lua: No such file" },
    { "return 42", "wants a table of settings" },
    { "return { app = ", "unexpected symbol" },
    { 'error("boom")', "boom" },
  }
  for _, case in ipairs(bad) do
    it("refuses " .. case[1]:gsub("\n", " "), function()
      local path = config(case[1])
      local code, out, err = run("check", path)
      assert.are.equal(1, code, out)
      assert.matches(case[2], err)
      assert.matches("check failed", err)
    end)
  end

  it("refuses an app script that does not compile", function()
    local path = config('return { app = "app.lua" }', "local x = = 1\n")
    local code, _, err = run("check", path)
    assert.are.equal(1, code)
    assert.matches("app: .*app%.lua:1: unexpected symbol", err)
  end)

  it("names a config file it cannot read", function()
    local code, _, err = run("check", lc.tmpdir() .. "/nowhere.conf.lua")
    assert.are.equal(1, code)
    assert.matches("cannot read .*nowhere%.conf%.lua: No such file or directory", err)
  end)
end)

describe("luacluster start", function()
  after_each(lc.cleanup)

  local function control_path()
    return lc.tmpdir() .. "/ctl" .. tostring(lc.now()):gsub("%.", "") .. ".sock"
  end

  it("runs what the config says: app, args, workers, env, control", function()
    local control = control_path()
    local path = config(([[
      return { app = "app.lua", args = { "one", "two" }, workers = 2,
               env = { GREETING = "hello" }, control = %q }
    ]]):format(control))
    local p = lc.start({ "start", path })
    local port = p:port()
    lc.wait_until(function() return p:count("PORT %d+ pid") >= 2 end)
    local res = assert(lc.http(port, "GET", "/"))
    assert.matches("greeting=hello args=one,two instance=%d", res.body)
    -- the commands find it by the config
    local code, out = run("status", "--json", "--config", path)
    assert.are.equal(0, code, out)
    assert.are.equal(2, #cjson.decode(out).workers)
    code = run("stop", "--config", path)
    assert.are.equal(0, code)
    assert.are.equal(0, p:wait_exit(10000))
  end)

  it("lets flags override the config, and the config the environment", function()
    local control = control_path()
    local path = config(([[
      return { app = "app.lua", workers = 3, control = %q, args = { "from-config" } }
    ]]):format(control))
    -- LUACLUSTER_WORKERS=4 loses to the config's 3; -w 1 beats both; args
    -- after CONF replace the config's
    local p = lc.start({ "start", "-w", "1", path, "from-flags" },
                       { env = { LUACLUSTER_WORKERS = 4 } })
    local port = p:port()
    local code, out = run("status", "--json", "--control", control)
    assert.are.equal(0, code, out)
    assert.are.equal(1, #cjson.decode(out).workers)
    assert.matches("args=from%-flags ", assert(lc.http(port, "GET", "/")).body)
    p:kill("SIGTERM")
    p:wait_exit(10000)
    local p2 = lc.start({ "start", path }, { env = { LUACLUSTER_WORKERS = 4 } })
    p2:port()
    lc.wait_until(function() return p2:count("PORT %d+ pid") >= 3 end)
    code, out = run("status", "--json", "--control", control)
    assert.are.equal(3, #cjson.decode(out).workers)
  end)

  it("sends the log where the config says, over LUACLUSTER_LOG", function()
    local log = lc.tmpdir() .. "/config" .. tostring(lc.now()):gsub("%.", "") .. ".log"
    local path = config(([[
      return { app = "app.lua", workers = 1, log = %q, min_uptime = 2000,
               max_restarts = 3 }
    ]]):format(log))
    local p = lc.start({ "start", path },
                       { env = { LUACLUSTER_LOG = lc.tmpdir() .. "/not-this.log" } })
    lc.wait_until(function()
      local f = io.open(log)
      local text = f and f:read("*a") or ""
      if f then f:close() end
      return text:find("PORT %d+ pid") and text:find("No%. of worker processes: 1")
    end, 5000, "the app's output and the runtime's lines in " .. log)
    assert.is_nil(io.open(lc.tmpdir() .. "/not-this.log"))
    p:kill("SIGTERM")
    assert.are.equal(0, p:wait_exit(10000))
  end)

  it("runs a script-mode app when the config names no workers", function()
    local path = config('return { app = "app.lua", env = { GREETING = "solo" } }')
    local p = lc.start({ "start", path })
    local port = p:port()
    assert.matches("greeting=solo args= instance=nil", assert(lc.http(port, "GET", "/")).body)
  end)

  it("starts nothing from a bad config", function()
    local path = config('return { app = "app.lua", workers = "many" }')
    local code, out, err = run("start", path)
    assert.are.equal(1, code)
    assert.matches("workers: wants a count", err)
    assert.is_nil(out:match("PORT"))
  end)
end)
