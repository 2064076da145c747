-- A reverse proxy: every request goes to UPSTREAM and its answer comes back.
--   UPSTREAM=http://127.0.0.1:8081 PORT=8080 luacluster -w 2 apps/proxy.lua
-- (or without -w: one process). Connections to the upstream are kept alive
-- and shared by all the requests of a worker (http.globalAgent).
--
-- A request without a body is proxied top to bottom with fetch(); one with
-- a body streams through http.request, piece by piece, with backpressure.
-- An upstream that is down answers 502, one that does not answer in time
-- 504, with the reason in the body.

local upstream = os.getenv("UPSTREAM") or "http://127.0.0.1:8081"
local port = tonumber(os.getenv("PORT")) or 8080
local timeout = tonumber(os.getenv("UPSTREAM_TIMEOUT")) or 10000

local target = assert(upstream:match("^http://([^/]+)$"), "UPSTREAM must be http://host:port")
local target_host, target_port = target:match("^([^:]+):?(%d*)$")
target_port = tonumber(target_port) or 80

-- Hop-by-hop headers end at the proxy (RFC 9110 7.6.1); the lengths are
-- the writer's business.
local HOP = { connection = true, ["keep-alive"] = true, ["proxy-connection"] = true,
              te = true, trailer = true, ["transfer-encoding"] = true, upgrade = true,
              ["content-length"] = true }

local function forwarded_headers(req)
  local out = {}
  for name, value in pairs(req.headers) do
    if not HOP[name] then out[name] = value end
  end
  local peer = req.socket.remoteAddress
  out["x-forwarded-for"] = req.headers["x-forwarded-for"]
    and (req.headers["x-forwarded-for"] .. ", " .. peer) or peer
  return out
end

local function answer_error(res, status, err)
  res.statusCode = status
  res:setHeader("Content-Type", "text/plain")
  res:finish(("upstream %s: %s\n"):format(upstream, err))
end

-- The whole answer at once: fetch waits here, the worker serves others.
local function proxy_simple(req, res)
  local up, err = fetch(upstream .. req.url, { method = req.method, timeout = timeout,
                                               headers = forwarded_headers(req) })
  if not up then
    return answer_error(res, err == "timeout" and 504 or 502, err)
  end
  res.statusCode = up.status
  for name, value in pairs(up.headers) do
    if not HOP[name] then res:setHeader(name, value) end
  end
  res:finish(up.body)
end

-- A body in both directions, streamed.
local function proxy_stream(req, res)
  local headers = forwarded_headers(req)
  headers["content-length"] = req.headers["content-length"]
  local up = http.request({ host = target_host, port = target_port, method = req.method,
                            path = req.url, headers = headers, timeout = timeout })
  up:on("response", function(ures)
    res.statusCode = ures.statusCode
    for name, value in pairs(ures.headers) do
      if not HOP[name] then res:setHeader(name, value) end
    end
    ures:on("data", function(chunk)
      if not res:write(chunk) then
        ures:pause()
        res:once("drain", function() ures:resume() end)
      end
    end)
    ures:on("end", function() res:finish() end)
    -- cut short upstream: cut short here too (no false end of body)
    ures:on("aborted", function() res:destroy() end)
  end)
  up:on("error", function(err)
    if res.headersSent then return res:destroy() end
    answer_error(res, err.code == "ETIMEDOUT" and 504 or 502, err.message)
  end)
  -- (the request body is bounded by the server's maxBodySize)
  req:on("data", function(chunk) up:write(chunk) end)
  req:on("end", function() up:finish() end)
end

local server
server = http.createServer(function(req, res)
  if req.headers["content-length"] or req.headers["transfer-encoding"] then
    proxy_stream(req, res)
  else
    proxy_simple(req, res)
  end
end):listen(port, function()
  print(("proxy on port %d -> %s (pid %d)"):format(server:address().port, upstream, process.pid))
end)
