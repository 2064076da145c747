-- Run with: build/embed_example apps/embed/app.lua
-- The master and a forked worker both use the C module the program preloads.
local greeter = require("greeter")

if cluster.isMaster then
  print("master: " .. greeter.hello("master"))
  local worker = cluster.fork()
  worker:on("message", function(msg)
    print("master got: " .. msg.greeting)
    worker:disconnect()
  end)
else
  process.send({ greeting = greeter.hello("worker " .. cluster.worker.id) })
end
