-- bench/redis end to end: one Redis GET per HTTP request.
--   REDIS_PORT=6379 PORT=8080 luacluster -w 2 bench/redis/lc_http.lua
local redis = require("redis")

local db = redis.createClient({ port = tonumber(os.getenv("REDIS_PORT")) or 6379 })

http.createServer(function(req, res)
  local v, err = db:get("bench:key")
  if not v then
    res.statusCode = 502
    return res:finish(tostring(err))
  end
  res:finish(v)
end):listen(tonumber(os.getenv("PORT")) or 8080)
