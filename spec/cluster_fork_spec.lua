local lc = require("lc")

describe("cluster.fork", function()
  after_each(lc.cleanup)

  it("starts a worker that exchanges messages with the master and exits 0", function()
    local app = lc.write_app([[
      if cluster.isMaster then
        local w = cluster.fork()
        w:on("online", function() w:send({ hello = w.id }) end)
        cluster.on("message", function(worker, msg)
          print("GOT", worker.id, msg.got, msg.pid == worker.process.pid)
          worker:disconnect()
        end)
        cluster.on("exit", function(worker, code, signal)
          print("EXIT", worker.id, code, signal, worker.exitedAfterDisconnect)
        end)
      else
        process.on("message", function(msg)
          process.send({ pid = process.pid, got = msg.hello })
        end)
      end
    ]])
    local p = lc.start({ app })
    assert.are.same({ "1", "1", "true" }, { p:wait_for("GOT\t(%d+)\t(%d+)\t(%a+)") })
    assert.are.same({ "1", "0", "nil", "true" }, { p:wait_for("EXIT\t(%d+)\t(%S+)\t(%S+)\t(%a+)") })
    assert.are.equal(0, p:wait_exit())
  end)
end)
