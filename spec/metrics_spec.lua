-- --metrics ADDR:PORT: the managed master serves Prometheus text. Debian's
-- promtool comes in a 96 MB package, so the format is checked here by a
-- strict parser of the text exposition format (0.0.4): HELP and TYPE once
-- per family and before its samples, names and labels well-formed, label
-- values escaped, one family's samples together, no duplicate series,
-- counters and histograms consistent (_bucket le ascending to +Inf,
-- cumulative, _count equal to the +Inf bucket). And the values follow the
-- load. `luacluster status --watch` prints the table every second.
local lc = require("lc")
local sd = require("sd")

local NAME = "^[a-zA-Z_:][a-zA-Z0-9_:]*$"
local LABEL = "^[a-zA-Z_][a-zA-Z0-9_]*$"
local TYPES = { counter = true, gauge = true, histogram = true, summary = true, untyped = true }

local function number(s)
  if s == "+Inf" then return math.huge end
  if s == "-Inf" then return -math.huge end
  if s == "NaN" then return 0 / 0 end
  -- decimal or scientific notation only (tonumber alone takes "0x10")
  assert(s:match("^[-+]?%d*%.?%d+[eE][-+]?%d+$") or s:match("^[-+]?%d*%.?%d+$")
         or s:match("^[-+]?%d+%.$"), "not a number: " .. s)
  return tonumber(s)
end

-- Parses `{a="x",b="y"}`; returns a table and a canonical string.
local function parse_labels(s, where)
  local labels, keys, i = {}, {}, 2
  while i <= #s - 1 do
    local name, rest = s:sub(i):match("^([^=]+)=\"()")
    assert(name and name:match(LABEL), where .. ": bad label name in " .. s)
    assert(labels[name] == nil, where .. ": label " .. name .. " twice")
    local j, value = i + rest - 1, {}
    while true do
      local c = s:sub(j, j)
      assert(c ~= "", where .. ": unterminated label value in " .. s)
      if c == "\\" then
        local e = s:sub(j + 1, j + 1)
        assert(e == "\\" or e == '"' or e == "n", where .. ": bad escape in " .. s)
        value[#value + 1] = e == "n" and "\n" or e
        j = j + 2
      elseif c == '"' then
        break
      else
        assert(c ~= "\n", where)
        value[#value + 1] = c
        j = j + 1
      end
    end
    labels[name] = table.concat(value)
    keys[#keys + 1] = name
    j = j + 1
    local sep = s:sub(j, j)
    assert(sep == "," or sep == "}", where .. ": expected , or } in " .. s)
    i = j + 1
  end
  table.sort(keys)
  local canon = {}
  for _, k in ipairs(keys) do canon[#canon + 1] = k .. "=" .. labels[k] end
  return labels, table.concat(canon, ",")
end

-- Parses and checks a whole exposition; returns families[name] = {type=,
-- samples={ {name=, labels=, value=} }}. Errors say which line is wrong.
local function parse(text)
  assert(text:sub(-1) == "\n", "the exposition must end with a newline")
  local families, order, seen_series, current = {}, {}, {}, nil
  local function family_of(sample)
    for _, suffix in ipairs({ "_bucket", "_sum", "_count" }) do
      local base = sample:match("^(.*)" .. suffix .. "$")
      if base and families[base] and families[base].type == "histogram" then return base end
    end
    return sample
  end
  local n = 0
  for line in text:gmatch("([^\n]*)\n") do
    n = n + 1
    local where = "line " .. n .. " (" .. line .. ")"
    if line:match("^#") then
      local kind, name, rest = line:match("^# (%u+) (%S+) ?(.*)$")
      if kind == "HELP" or kind == "TYPE" then
        assert(name:match(NAME), where .. ": bad metric name")
        local f = families[name]
        if not f then
          f = { samples = {} }
          families[name] = f
          order[#order + 1] = name
        end
        assert(#f.samples == 0, where .. ": " .. kind .. " after samples")
        assert(not f[kind], where .. ": a second " .. kind)
        f[kind] = true
        if kind == "TYPE" then
          assert(TYPES[rest], where .. ": unknown type " .. rest)
          f.type = rest
        else
          assert(rest ~= "", where .. ": empty HELP")
        end
        current = name
      end
    else
      assert(line ~= "", where .. ": empty line")
      local name, labels, value = line:match("^([^{ ]+)(%b{}) (%S+)$")
      if not name then
        name, value = line:match("^([^{ ]+) (%S+)$")
        labels = "{}"
      end
      assert(name and name:match(NAME), where .. ": bad sample")
      local fam = family_of(name)
      assert(families[fam], where .. ": sample without TYPE")
      assert(fam == current, where .. ": family " .. fam .. " is not together")
      local parsed, canon = parse_labels(labels, where)
      local key = name .. "{" .. canon .. "}"
      assert(not seen_series[key], where .. ": duplicate series " .. key)
      seen_series[key] = true
      local v = number(value)
      if families[fam].type == "counter" then
        assert(v >= 0, where .. ": negative counter")
      end
      table.insert(families[fam].samples, { name = name, labels = parsed, value = v })
    end
  end
  -- histograms: per series, le ascending and cumulative up to +Inf = _count
  for _, name in ipairs(order) do
    local f = families[name]
    assert(f.TYPE, name .. ": no TYPE")
    if f.type == "histogram" then
      local series = {}
      for _, s in ipairs(f.samples) do
        local l = {}
        for k, v in pairs(s.labels) do if k ~= "le" then l[#l + 1] = k .. "=" .. v end end
        table.sort(l)
        local id = table.concat(l, ",")
        series[id] = series[id] or { buckets = {} }
        if s.name == name .. "_bucket" then
          assert(s.labels.le, name .. ": bucket without le")
          table.insert(series[id].buckets, { le = number(s.labels.le), value = s.value })
        elseif s.name == name .. "_count" then
          series[id].count = s.value
        elseif s.name == name .. "_sum" then
          series[id].sum = s.value
        end
      end
      for id, s in pairs(series) do
        local prev_le, prev = -math.huge, 0
        for _, b in ipairs(s.buckets) do
          assert(b.le > prev_le, name .. "{" .. id .. "}: le not ascending")
          assert(b.value >= prev, name .. "{" .. id .. "}: buckets not cumulative")
          prev_le, prev = b.le, b.value
        end
        assert(prev_le == math.huge, name .. "{" .. id .. "}: no +Inf bucket")
        assert(s.count == prev, name .. "{" .. id .. "}: _count is not the +Inf bucket")
        assert(s.sum and s.sum >= 0, name .. "{" .. id .. "}: no _sum")
      end
    end
  end
  return families
end

-- The value of one sample: family name, sample name, labels to match.
local function value(families, fam, sample, match)
  for _, s in ipairs(families[fam] and families[fam].samples or {}) do
    local ok = s.name == sample
    for k, v in pairs(match or {}) do ok = ok and s.labels[k] == v end
    if ok then return s.value end
  end
end

local function sum(families, fam, sample)
  local total = 0
  for _, s in ipairs(families[fam] and families[fam].samples or {}) do
    if s.name == sample then total = total + s.value end
  end
  return total
end

local SERVER = [[
  local server = http.createServer(function(req, res)
    if req.url == "/slow" then
      setTimeout(function() res:finish("slow\n") end, 2000)
    else
      res:finish("fast\n")
    end
  end)
  server:listen(0, "127.0.0.1", function()
    print("PORT " .. server:address().port .. " pid " .. process.pid)
  end)
]]

local function control_path()
  return lc.tmpdir() .. "/ctl" .. tostring(lc.now()):gsub("%.", "") .. ".sock"
end

local function scrape(port)
  local res = assert(lc.http(port, "GET", "/metrics"))
  assert.are.equal(200, res.status)
  assert.matches("^text/plain; version=0%.0%.4", res.headers["content-type"])
  return parse(res.body), res.body
end

describe("the parser this spec checks with", function()
  it("refuses what promtool refuses", function()
    local bad = {
      "x 1",                                              -- no TYPE, no newline
      "# TYPE x counter\nx -1\n",                         -- negative counter
      "# TYPE x gauge\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n",     -- duplicate series
      "# TYPE x gauge\n# TYPE x gauge\nx 1\n",            -- TYPE twice
      "# TYPE x gauge\nx 1\n# HELP x late\n",             -- HELP after samples
      "# TYPE x gauge\nx{1a=\"b\"} 1\n",                  -- bad label name
      "# TYPE x gauge\nx{a=\"b} 1\n",                     -- unterminated value
      "# TYPE x gauge\nx one\n",                          -- not a number
      "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
      "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_sum 1\nh_count 2\n", -- no +Inf
      "# TYPE a gauge\n# TYPE b gauge\na 1\n",            -- a's sample after b's TYPE
    }
    for _, text in ipairs(bad) do
      assert.has_error(function() parse(text) end, nil, text)
    end
    parse("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\n" ..
          "h_sum 0.7\nh_count 2\n# TYPE g gauge\ng{a=\"q\\\"\\\\\"} 3.5e-3\n")
  end)
end)

describe("--metrics", function()
  after_each(lc.cleanup)

  it("serves well-formed Prometheus text whose values follow the load", function()
    local mport = sd.free_port()
    local control = control_path()
    local app = lc.write_app(SERVER)
    local p = lc.start({ "-w", "2", "--control", control, "--metrics", "127.0.0.1:" .. mport, app })
    local port = p:port()
    lc.wait_until(function() return p:count("PORT %d+ pid") >= 2 end)
    p:wait_for("metrics on http://127.0.0.1:" .. mport .. "/metrics")
    local before = scrape(mport)
    assert.are.equal(2, value(before, "luacluster_workers", "luacluster_workers"))
    assert.are.equal(0, value(before, "luacluster_reloads_total", "luacluster_reloads_total"))
    for _, fam in ipairs({ "luacluster_worker_info", "luacluster_worker_requests_total",
                           "luacluster_worker_requests_in_flight",
                           "luacluster_worker_request_duration_seconds",
                           "luacluster_worker_restarts_total",
                           "luacluster_worker_resident_memory_bytes",
                           "luacluster_worker_cpu_seconds_total",
                           "luacluster_worker_ipc_sent_bytes_total",
                           "luacluster_worker_ipc_received_bytes_total",
                           "luacluster_worker_start_time_seconds",
                           "luacluster_master_start_time_seconds" }) do
      assert.is_truthy(before[fam], fam .. " is missing")
    end
    assert.are.equal(2, #before.luacluster_worker_info.samples)
    assert.is_true(sum(before, "luacluster_worker_resident_memory_bytes",
                       "luacluster_worker_resident_memory_bytes") > 1e6)
    local requests0 = sum(before, "luacluster_worker_requests_total", "luacluster_worker_requests_total")
    local ipc0 = sum(before, "luacluster_worker_ipc_sent_bytes_total", "luacluster_worker_ipc_sent_bytes_total")

    -- load: wrk on the fast path, and slow requests held open while we look
    local load = lc.load(port, { seconds = 2, connections = 8 })
    local slow = {}
    for i = 1, 4 do
      slow[i] = assert(lc.connect(port))
      slow[i]:send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    end
    local during
    lc.wait_until(function()
      during = scrape(mport)
      return sum(during, "luacluster_worker_requests_in_flight",
                 "luacluster_worker_requests_in_flight") >= 4
    end, 5000, "4 requests in flight in the metrics")
    for i = 1, 4 do
      local res = assert(slow[i]:read_response(5000))
      assert.are.equal(200, res.status)
      slow[i]:close()
    end
    local r = load:result()
    assert.are.equal(0, r.failed, r.output)

    local after
    lc.wait_until(function()
      after = scrape(mport)
      return sum(after, "luacluster_worker_requests_total", "luacluster_worker_requests_total")
             >= requests0 + r.requests + 4
    end, 4000, "the requests to reach the metrics")
    -- the histogram saw them: its count is the requests, and the slow ones
    -- (2 s) sit above the 0.25 s bucket
    local count = sum(after, "luacluster_worker_request_duration_seconds",
                      "luacluster_worker_request_duration_seconds_count")
    assert.are.equal(sum(after, "luacluster_worker_requests_total", "luacluster_worker_requests_total"), count)
    local le_025, inf = 0, 0
    for _, s in ipairs(after.luacluster_worker_request_duration_seconds.samples) do
      if s.name:match("_bucket$") and s.labels.le == "0.25" then le_025 = le_025 + s.value end
      if s.name:match("_bucket$") and s.labels.le == "+Inf" then inf = inf + s.value end
    end
    assert.is_true(inf - le_025 >= 4, "the slow requests are not in the upper buckets")
    assert.is_true(sum(after, "luacluster_worker_request_duration_seconds",
                       "luacluster_worker_request_duration_seconds_sum") >= 1.2)
    assert.is_true(sum(after, "luacluster_worker_ipc_sent_bytes_total",
                       "luacluster_worker_ipc_sent_bytes_total") > ipc0)
    assert.is_true(sum(after, "luacluster_worker_cpu_seconds_total",
                       "luacluster_worker_cpu_seconds_total") > 0)

    -- a reload is counted, and the restarted slots show new workers
    p:kill("SIGUSR2")
    lc.wait_until(function()
      local m = scrape(mport)
      return value(m, "luacluster_reloads_total", "luacluster_reloads_total") == 1
             and #m.luacluster_worker_info.samples == 2
             and value(m, "luacluster_worker_info", "luacluster_worker_info", { worker = "3" })
             and value(m, "luacluster_worker_info", "luacluster_worker_info", { worker = "4" })
    end, 10000, "the reload in the metrics")
    assert.are.equal(404, assert(lc.http(mport, "GET", "/other")).status)
    assert.are.equal(405, assert(lc.http(mport, "POST", "/metrics")).status)
  end)

  it("counts a slot's restarts", function()
    local mport = sd.free_port()
    local app = lc.write_app(SERVER)
    local p = lc.start({ "-w", "1", "--control", control_path(), "--metrics", "127.0.0.1:" .. mport, app })
    p:port()
    local pid = tonumber(p:wait_for("PORT %d+ pid (%d+)"))
    lc.kill(pid, "SIGKILL")
    lc.wait_until(function()
      return value(scrape(mport), "luacluster_worker_restarts_total",
                   "luacluster_worker_restarts_total", { slot = "0" }) == 1
    end, 5000, "a restart in the metrics")
  end)

  it("shows how full each shared dict is", function()
    local mport = sd.free_port()
    local app = lc.write_app([[
      local cache = require("shared").cache
      local server = http.createServer(function(req, res)
        for i = 1, 200 do cache:set("k" .. i, ("x"):rep(1000)) end
        res:finish("filled\n")
      end)
      server:listen(0, "127.0.0.1", function()
        print("PORT " .. server:address().port .. " pid " .. process.pid)
      end)
    ]])
    local p = lc.start({ "-w", "1", "--control", control_path(), "--shared", "cache=1m",
                         "--metrics", "127.0.0.1:" .. mport, app })
    local port = p:port()
    local m = scrape(mport)
    local capacity = value(m, "luacluster_shared_dict_capacity_bytes",
                           "luacluster_shared_dict_capacity_bytes", { dict = "cache" })
    local free = value(m, "luacluster_shared_dict_free_bytes",
                       "luacluster_shared_dict_free_bytes", { dict = "cache" })
    assert.is_true(capacity > 900000 and capacity <= 1048576, tostring(capacity))
    assert.is_true(free > 0 and free <= capacity)
    assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
    local after = value(scrape(mport), "luacluster_shared_dict_free_bytes",
                        "luacluster_shared_dict_free_bytes", { dict = "cache" })
    assert.is_true(after <= free - 200000, ("free %d -> %d"):format(free, after))
  end)

  it("shows each worker's Redis clients and the master's, connected or not", function()
    local server = require("redis_server").start()
    local url = "redis://127.0.0.1:" .. server.port
    local mport = sd.free_port()
    local app = lc.write_app([[
      local db = require("redis").createClient({ url = os.getenv("REDIS_URL") })
      db:on("error", function() end)
    ]] .. SERVER)
    local p = lc.start({ "-w", "2", "--control", control_path(), "--redis", url,
                         "--metrics", "127.0.0.1:" .. mport, app },
                       { env = { REDIS_URL = url } })
    p:port()
    local function counts()
      local m = scrape(mport)
      return sum(m, "luacluster_worker_redis_clients", "luacluster_worker_redis_clients"),
             sum(m, "luacluster_worker_redis_clients_ready", "luacluster_worker_redis_clients_ready"),
             value(m, "luacluster_master_redis_clients", "luacluster_master_redis_clients"),
             value(m, "luacluster_master_redis_clients_ready", "luacluster_master_redis_clients_ready")
    end
    -- two workers with a client each; the master publishes and subscribes
    lc.wait_until(function()
      local open, ready, mopen, mready = counts()
      return open == 2 and ready == 2 and mopen == 2 and mready == 2
    end, 5000, "every client connected in the metrics")
    server:kill()
    lc.wait_until(function()
      local open, ready, mopen, mready = counts()
      return open == 2 and ready == 0 and mopen == 2 and mready == 0
    end, 5000, "the clients reconnecting in the metrics")
  end)

  it("refuses a bad address, a port in use, and script mode, clearly", function()
    local app = lc.write_app(SERVER)
    local p, err = lc.start_split({ "-w", "1", "--metrics", "9100", app })
    assert.are.equal(1, p:wait_exit())
    assert.matches("%-%-metrics wants ADDRESS:PORT", err())
    local fd, used = sd.listen_socket(0)
    p, err = lc.start_split({ "-w", "1", "--control", control_path(), "--metrics", "127.0.0.1:" .. used, app })
    assert.are.equal(1, p:wait_exit())
    sd.close(fd)
    assert.matches("cannot serve metrics on 127%.0%.0%.1:" .. used .. ": address already in use", err())
    assert.is_nil(p:output():match("PORT"))
    p, err = lc.start_split({ "--metrics", "127.0.0.1:0", app })
    assert.are.equal(1, p:wait_exit())
    assert.matches("managed master: add %-w N", err())
  end)

  it("keeps its port across a binary upgrade", function()
    local mport = sd.free_port()
    local control = control_path()
    local app = lc.write_app(SERVER)
    local p = lc.start({ "-w", "1", "--control", control, "--metrics", "127.0.0.1:" .. mport, app })
    p:port()
    local c = lc.spawn({ lc.bin, "upgrade", "--control", control })
    assert.are.equal(0, c:wait_exit(20000), c:output())
    assert.are.equal(0, p:wait_exit(10000))
    local m = scrape(mport)
    assert.are.equal(1, #m.luacluster_worker_info.samples)
    assert.are_not.equal(tostring(p.pid), m.luacluster_worker_info.samples[1].labels.pid)
  end)
end)

describe("luacluster status --watch", function()
  after_each(lc.cleanup)

  it("prints the table every second until the master goes", function()
    local control = control_path()
    local app = lc.write_app(SERVER)
    local p = lc.start({ "-w", "1", "--control", control, app })
    p:port()
    local w = lc.spawn({ lc.bin, "status", "--watch", "--control", control })
    local t0 = lc.now()
    lc.wait_until(function() return w:count("master pid %d+") >= 3 end, 5000, "three tables")
    assert.is_true(lc.now() - t0 >= 1900, "tables came faster than one a second")
    assert.are.equal(3, w:count("id%s+instance%s+pid"))
    p:kill("SIGTERM")
    -- the master gone, the watch ends with an error
    assert.are.equal(1, w:wait_exit(5000))
    assert.matches("no answer from", w:output())
  end)
end)
