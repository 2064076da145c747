-- A per-user cache every worker shares: what a slow backend says about a
-- user (here a 50 ms lookup) is kept in a shared dict for CACHE_TTL
-- seconds (30), so the next request for that user, on any worker, is
-- answered from memory.
--
--   luacluster -w 2 --shared cache=16m apps/cache.lua
--   curl localhost:8080/users/42        # "cached": false, then true
--   curl -X DELETE localhost:8080/users/42
--   curl localhost:8080/stats
--
-- Workers that miss the same user at once do not all ask the backend: the
-- first takes a short lock in the dict (add fails for the others) and the
-- others wait for its answer.
local cjson = require("cjson")
local cache = require("shared").cache

local port = tonumber(os.getenv("PORT")) or 8080
local ttl = tonumber(os.getenv("CACHE_TTL")) or 30

-- The slow backend: a database, an auth service...
local function lookup(id, callback)
  setTimeout(function()
    callback({ id = id, name = "user " .. id, roles = { "reader", id % 2 == 0 and "writer" or nil },
               loaded_by = process.pid })
  end, 50)
end

-- The user from the cache, else from the backend (once for all workers).
local function user(id, callback, waited)
  local key = "user:" .. id
  local found = cache:get(key)
  if found then
    cache:incr("hits", 1, 0)
    return callback(found, true)
  end
  if cache:add("lock:" .. key, process.pid, 1) then
    cache:incr("misses", 1, 0)
    return lookup(id, function(u)
      cache:set(key, u, ttl)
      cache:delete("lock:" .. key)
      callback(u, false)
    end)
  end
  -- another worker is asking the backend: its answer lands in the cache
  waited = (waited or 0) + 1
  if waited > 200 then return callback(nil) end
  setTimeout(function() user(id, callback, waited) end, 5)
end

local function send(res, status, body)
  res.statusCode = status
  res:setHeader("Content-Type", "application/json")
  res:finish(cjson.encode(body))
end

local server = http.createServer(function(req, res)
  local id = tonumber(req.url:match("^/users/(%d+)$"))
  if id and req.method == "GET" then
    user(id, function(u, cached)
      if not u then return send(res, 503, { error = "backend too slow" }) end
      send(res, 200, { user = u, cached = cached, worker = process.pid })
    end)
  elseif id and req.method == "DELETE" then
    cache:delete("user:" .. id)
    send(res, 200, { deleted = id })
  elseif req.url == "/stats" then
    send(res, 200, { hits = cache:get("hits") or 0, misses = cache:get("misses") or 0,
                     capacity = cache:capacity(), free = cache:free_space() })
  else
    send(res, 404, { error = "try /users/42 or /stats" })
  end
end)

server:listen(port, function() print("cache listening on " .. server:address().port) end)
