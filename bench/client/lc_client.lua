-- bench/client: luacluster's client, one process.
--   URL=http://127.0.0.1:8081/ N=20000 CONC=1 MODE=request luacluster bench/client/lc_client.lua
-- MODE request: http.get (Node's style) with a keep-alive agent of CONC
-- sockets; MODE fetch: CONC coroutines each calling fetch in a loop.
-- WARMUP requests go first; prints "RESULT <requests/s>".
local url = assert(os.getenv("URL"), "URL")
local n = tonumber(os.getenv("N")) or 20000
local conc = tonumber(os.getenv("CONC")) or 1
local mode = os.getenv("MODE") or "request"
local warmup = tonumber(os.getenv("WARMUP")) or math.floor(n / 10)

local agent = http.Agent({ keepAlive = true, maxSockets = conc, maxFreeSockets = conc })
local host, port, path = url:match("^http://([^:/]+):(%d+)(.*)$")
local options = { host = host, port = tonumber(port), path = path ~= "" and path or "/", agent = agent }

-- Runs count requests, conc at a time; then(elapsed seconds).
local function run(count, after)
  local started, done, t0 = 0, 0, process.hrtimeNs()
  local function finished()
    done = done + 1
    if done == count then after((process.hrtimeNs() - t0) / 1e9) return false end
    return true
  end
  if mode == "fetch" then
    for _ = 1, conc do
      setImmediate(function()
        while started < count do
          started = started + 1
          local res, err = fetch(url, { agent = agent })
          if not res then error("fetch: " .. err) end
          if not finished() then return end
        end
      end)
    end
  else
    local function one()
      if started >= count then return end
      started = started + 1
      local req = http.get(options, function(res)
        res:on("end", function() if finished() then one() end end)
      end)
      req:on("error", function(err) error("request: " .. err.message) end)
    end
    for _ = 1, conc do one() end
  end
end

run(warmup, function()
  run(n, function(seconds)
    print(("RESULT %.0f"):format(n / seconds))
    process.exit(0)
  end)
end)
