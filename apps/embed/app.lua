-- Run with: build/embed_example apps/embed/app.lua
-- The master and a forked worker both use the C module the program
-- preloads, and count greetings in the shared dict it declares.
local greeter = require("greeter")
local greetings = require("shared").greetings

if cluster.isMaster then
  print("master: " .. greeter.hello("master"))
  local worker = cluster.fork()
  worker:on("message", function(msg)
    print("master got: " .. msg.greeting)
    print("greetings sent: " .. greetings:get("sent"))
    worker:disconnect()
  end)
else
  greetings:incr("sent", 1, 0)
  process.send({ greeting = greeter.hello("worker " .. cluster.worker.id) })
end
