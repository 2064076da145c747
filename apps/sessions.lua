-- Logins every worker knows, on every host: the sessions live in Redis, so
-- a user who logs in on one worker is recognised by all of them, and by
-- the workers of any other host pointed at the same Redis.
--
--   REDIS_URL=redis://127.0.0.1:6379/0 PORT=8080 luacluster -w 2 apps/sessions.lua
--   curl -i -X POST 'localhost:8080/login?user=alice'     # Set-Cookie: sid=...
--   curl -b 'sid=...' localhost:8080/me                   # {"user":"alice",...}
--   curl -b 'sid=...' -X POST localhost:8080/logout
--
-- Each worker has one Redis client; the GETs of all the requests it serves
-- at a moment go out together in one write. SESSION_TTL (3600 s) bounds a
-- session's life, renewed on each visit.
local cjson = require("cjson")
local hex = require("hex")
local redis = require("redis")

local port = tonumber(os.getenv("PORT")) or 8080
local ttl = tonumber(os.getenv("SESSION_TTL")) or 3600
local db = redis.createClient({ url = os.getenv("REDIS_URL") or "redis://127.0.0.1:6379/0" })
db:on("error", function(err) print("redis: " .. err.message) end)

local me = { worker = cluster.isWorker and cluster.worker.id or 0, pid = process.pid,
             host = os.getenv("HOST_NAME") or os.hostname() }

local function send(res, status, body, headers)
  res.statusCode = status
  res:setHeader("Content-Type", "application/json")
  for k, v in pairs(headers or {}) do res:setHeader(k, v) end
  body.served_by = me
  res:finish(cjson.encode(body))
end

local function session_id(req)
  return req.headers.cookie and req.headers.cookie:match("sid=(%x+)")
end

local server = http.createServer(function(req, res)
  local path, query = req.url:match("^([^?]*)%??(.*)$")
  if path == "/login" and req.method == "POST" then
    local user = querystring.parse(query).user
    if type(user) ~= "string" or user == "" then
      return send(res, 400, { error = "POST /login?user=NAME" })
    end
    local sid = hex.encode(crypto.randomBytes(16))
    local ok, err = db:set("session:" .. sid, cjson.encode({ user = user, since = os.time() }),
                           "EX", ttl)
    if not ok then return send(res, 503, { error = "sessions unavailable: " .. err }) end
    return send(res, 200, { user = user },
                { ["Set-Cookie"] = "sid=" .. sid .. "; Path=/; HttpOnly; Max-Age=" .. ttl })
  end
  local sid = session_id(req)
  if path == "/me" then
    if not sid then return send(res, 401, { user = cjson.null }) end
    -- the visit renews the session: GETEX reads it and pushes its expiry
    local data, err = db:getex("session:" .. sid, "EX", ttl)
    if err then return send(res, 503, { error = "sessions unavailable: " .. err }) end
    if not data then return send(res, 401, { user = cjson.null }) end
    local s = cjson.decode(data)
    return send(res, 200, { user = s.user, since = s.since })
  end
  if path == "/logout" and req.method == "POST" then
    if sid then db:del("session:" .. sid) end
    return send(res, 200, { user = cjson.null }, { ["Set-Cookie"] = "sid=; Path=/; Max-Age=0" })
  end
  send(res, 404, { error = "try POST /login?user=NAME, GET /me, POST /logout" })
end)

server:listen(port, function()
  print("sessions listening on " .. server:address().port)
end)
