-- The embedding example (apps/embed): a C program that links the library and
-- preloads its own C module, "greeter". Workers re-exec that program, so the
-- module exists in every worker too.
local lc = require("lc")

local function realpath(path)
  local f = io.popen("readlink -f '" .. path .. "'")
  local r = f:read("*l")
  f:close()
  return r
end

describe("the embedding example", function()
  after_each(lc.cleanup)

  it("runs apps/embed/app.lua: the C module greets in the master and in a forked worker", function()
    local p = lc.spawn({ lc.embed_bin, lc.source .. "/apps/embed/app.lua" })
    p:wait_for("master: hello, master %(from C%)\n")
    p:wait_for("master got: hello, worker 1 %(from C%)\n")
    p:wait_for("greetings sent: 1\n")
    assert.are.equal(0, p:wait_exit())
  end)

  it("runs workers as the embedding binary itself, with the C module preloaded", function()
    local app = lc.write_app([[
      local greeter = require("greeter")
      if cluster.isMaster then
        process.on("SIGUSR2", function() cluster.disconnect() end)
        local w = cluster.fork()
        w:on("message", function(msg)
          print("WORKER SAYS", msg.pid, msg.host, msg.greeting, msg.exe)
        end)
        w:on("exit", function(code) print("EXIT", code) end)
      else
        process.send({ pid = process.pid, host = greeter.host,
                       greeting = greeter.hello("from the worker"), exe = process.argv[1] })
      end
    ]])
    local p = lc.spawn({ lc.embed_bin, app })
    local pid, host, greeting, exe =
      p:wait_for("WORKER SAYS\t(%d+)\t([^\t]+)\t([^\t]+)\t([^\n]+)")
    assert.are.equal("embed_example", host)
    assert.are.equal("hello, from the worker (from C)", greeting)
    local embed = realpath(lc.embed_bin)
    assert.are.equal(embed, realpath("/proc/" .. pid .. "/exe"))
    assert.are.equal(embed, exe)
    assert.is_true(lc.alive(tonumber(pid)))
    p:kill("SIGUSR2")
    assert.are.equal("0", p:wait_for("EXIT\t(%d+)"))
    assert.are.equal(0, p:wait_exit())
  end)

  it("passes the embedding program's script arguments to the master and its workers", function()
    local app = lc.write_app([[
      print(cluster.isMaster and "MASTER" or "WORKER", table.concat(arg, ","))
      if cluster.isMaster then cluster.fork() else process.exit(0) end
    ]])
    local p = lc.spawn({ lc.embed_bin, app, "first", "second" })
    assert.are.equal("first,second", p:wait_for("MASTER\t(%S+)"))
    assert.are.equal("first,second", p:wait_for("WORKER\t(%S+)"))
    assert.are.equal(0, p:wait_exit())
  end)
end)
