-- /etc/luacluster/hello.conf.lua, for luacluster@hello.service:
--   luacluster check /etc/luacluster/hello.conf.lua
--   systemctl enable --now luacluster@hello
return {
  app = "/usr/share/doc/luacluster/examples/server.lua",
  workers = "max",
  sched = "rr",
  kill_timeout = 10000,   -- ms a stopping worker may take
  listen_timeout = 10000, -- ms a new worker has to get ready
  max_memory = "512M",    -- replace a worker over this RSS
  heartbeat_timeout = 10000,
  env = { APP_ENV = "production" },
  metrics = "127.0.0.1:9100",
}
