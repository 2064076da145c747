-- Logs for operators: --log FILE takes the runtime's lines and the app's
-- output of the master and every worker, SIGUSR1 reopens it after logrotate
-- moved it, and console.* writes the app's own lines in the runtime's
-- format, so each says which process wrote it.
local lc = require("lc")

local SERVER = [[
print("PRINTED BY " .. process.pid)
console.log("console log", 1, true)
console.warn("console warn")
console.error("console error")
console.debug("console debug")
local server = http.createServer(function(req, res)
  print("REQUEST " .. req.url .. " " .. process.pid)
  console.info("served " .. req.url)
  res:finish("ok")
end)
server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
]]

local function lines_of(path, pattern)
  local n = 0
  for _ in lc.read_file(path):gmatch(pattern) do n = n + 1 end
  return n
end

describe("logging", function()
  after_each(lc.cleanup)

  it("sends every process's output to --log FILE and reopens it on SIGUSR1", function()
    local log = lc.tmpdir() .. "/managed.log"
    local p = lc.start({ "-w", "2", "--log", log, lc.write_app(SERVER) })
    lc.wait_until(function() return lines_of(log, "PORT %d+") >= 2 end, 5000,
                  function() return "two workers in the log:\n" .. lc.read_file(log) end)
    local port = tonumber(lc.read_file(log):match("PORT (%d+)"))
    local text = lc.read_file(log)
    -- Nothing on the terminal; the master's and the workers' lines in FILE.
    assert.are.equal("", p:output())
    assert.is_truthy(text:find("%[INFO%] %[master%] %- No%. of worker processes: 2"), text)
    assert.are.equal(2, lines_of(log, "PRINTED BY %d+"))
    assert.are.equal(2, lines_of(log, "%[INFO%] %[worker%d%] %- console log 1 true\n"))

    -- logrotate: move the file, then SIGUSR1 to the master.
    assert(os.rename(log, log .. ".1"))
    p:kill("SIGUSR1")
    lc.wait_until(function()
      assert.are.equal(200, assert(lc.http(port, "GET", "/after-rotate")).status)
      return lines_of(log, "REQUEST /after%-rotate") >= 1
    end, 5000, function() return "a request logged to the new file" end)
    -- Both workers write to the new file now.
    lc.wait_until(function()
      lc.http(port, "GET", "/after-rotate")
      local pids = {}
      for pid in lc.read_file(log):gmatch("REQUEST /after%-rotate (%d+)") do pids[pid] = true end
      local n = 0
      for _ in pairs(pids) do n = n + 1 end
      return n == 2
    end, 5000, function() return "both workers in the new file:\n" .. lc.read_file(log) end)
    -- What was written before stays in the moved file.
    assert.are.equal(2, lines_of(log .. ".1", "PRINTED BY %d+"))
    assert.are.equal(0, lines_of(log, "PRINTED BY %d+"))
    assert.is_false(p:poll())
  end)

  it("takes --log in script mode too, and reopens in the master and its workers", function()
    local log = lc.tmpdir() .. "/script.log"
    local p = lc.start({ "--log", log, lc.write_app([[
      if cluster.isMaster then
        cluster.fork()
        print("MASTER UP")
      else
      ]] .. SERVER .. [[
      end
    ]]) })
    lc.wait_until(function() return lines_of(log, "PORT %d+") >= 1 end, 5000,
                  function() return "the worker in the log:\n" .. lc.read_file(log) end)
    local port = tonumber(lc.read_file(log):match("PORT (%d+)"))
    assert(os.rename(log, log .. ".1"))
    p:kill("SIGUSR1")
    lc.wait_until(function()
      lc.http(port, "GET", "/x")
      return lines_of(log, "REQUEST /x") >= 1
    end, 5000, function() return "the worker writing to the new file" end)
    assert.is_truthy(lc.read_file(log .. ".1"):find("MASTER UP", 1, true))
  end)

  it("refuses a log file it cannot open, with the path in the message", function()
    local bad = lc.tmpdir() .. "/no/such/dir/app.log"
    local p, stderr = lc.start_split({ "--log", bad, lc.write_app("print('RAN')") })
    assert.are.equal(1, p:wait_exit())
    assert.is_truthy(stderr():find(bad, 1, true), stderr())
    assert.are.equal("", p:output())
  end)

  it("writes console lines in the runtime's format with levels, filtered by LUACLUSTER_LOG_LEVEL", function()
    local p, stderr = lc.start_split({ lc.write_app(SERVER) })
    p:port()
    local out = p:output()
    local pid = out:match("PRINTED BY (%d+)")
    assert.is_truthy(out:find("^PRINTED BY"), out) -- print stays raw
    assert.is_truthy(out:match("%(" .. "[^)]*%-" .. pid .. "%) %[%d+%-%d+%-%d+ [%d:.]+%] %[INFO%] %[master%] %- console log 1 true\n"), out)
    assert.is_falsy(out:find("console debug", 1, true), out)
    lc.wait_until(function() return stderr():find("console error", 1, true) end, 5000)
    assert.is_truthy(stderr():find("[WARN] [master] - console warn", 1, true), stderr())
    assert.is_truthy(stderr():find("[ERROR] [master] - console error", 1, true), stderr())

    local q = lc.start({ lc.write_app(SERVER) }, { env = { LUACLUSTER_LOG_LEVEL = "debug" } })
    q:port()
    q:wait_for("%[DEBUG%] %[master%] %- console debug")
  end)
end)
