-- A fan-out aggregator: GET / calls three upstreams at once and answers
-- with one JSON document when all three have answered (or failed).
--   UPSTREAMS="http://127.0.0.1:8081/users,http://127.0.0.1:8082/orders,http://127.0.0.1:8083/stock" \
--     PORT=8080 luacluster -w 2 apps/aggregator.lua
-- The answer takes as long as the slowest upstream, not the sum: each call
-- runs in a coroutine of its own (a setImmediate callback) and the last
-- one to finish writes the response.

local cjson = require("cjson")

local port = tonumber(os.getenv("PORT")) or 8080
local timeout = tonumber(os.getenv("UPSTREAM_TIMEOUT")) or 2000
local upstreams = {}
for url in (os.getenv("UPSTREAMS") or
            "http://127.0.0.1:8081/users,http://127.0.0.1:8081/orders,http://127.0.0.1:8081/stock")
           :gmatch("[^,]+") do
  upstreams[#upstreams + 1] = url
end

-- Calls every url concurrently; done(results) once all are in, in order.
local function fan_out(urls, done)
  local results, left = {}, #urls
  for i, url in ipairs(urls) do
    setImmediate(function()
      local t0 = process.hrtime()
      local res, err = fetch(url, { timeout = timeout })
      local took = process.hrtime(t0)
      results[i] = {
        url = url,
        status = res and res.status or nil,
        body = res and res.body or nil,
        error = err,
        ms = math.floor(took[1] * 1000 + took[2] / 1e6),
      }
      left = left - 1
      if left == 0 then done(results) end
    end)
  end
end

local server
server = http.createServer(function(req, res)
  if req.url ~= "/" then
    res.statusCode = 404
    return res:finish("try /\n")
  end
  fan_out(upstreams, function(results)
    local failed = 0
    for _, r in ipairs(results) do if r.error then failed = failed + 1 end end
    res.statusCode = failed == #results and 502 or 200
    res:setHeader("Content-Type", "application/json")
    res:finish(cjson.encode({ results = results, failed = failed }))
  end)
end):listen(port, function()
  print(("aggregator on port %d over %d upstreams (pid %d)"):format(
    server:address().port, #upstreams, process.pid))
end)
