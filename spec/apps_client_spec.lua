-- The client examples: apps/proxy.lua and apps/aggregator.lua, run as
-- shipped, in front of spec/helpers/upstream.py.
local lc = require("lc")

local function start_app(name, env)
  env.PORT = 0
  local p = lc.start({ lc.source .. "/apps/" .. name }, { env = env })
  return p, tonumber((p:wait_for("on port (%d+)", 10000)))
end

describe("apps/proxy.lua", function()
  after_each(lc.cleanup)

  it("passes requests, headers and bodies through, adding X-Forwarded-For", function()
    local _, up = lc.upstream()
    local _, port = start_app("proxy.lua", { UPSTREAM = "http://127.0.0.1:" .. up })
    local res = assert(lc.http(port, "GET", "/hello"))
    assert.are.equal(200, res.status)
    assert.are.equal("hello", res.body)
    res = assert(lc.http(port, "GET", "/chunked"))
    assert.are.equal("one,two,three", res.body)
    res = assert(lc.http(port, "GET", "/missing"))
    assert.are.equal(404, res.status)
    res = assert(lc.http(port, "HEAD", "/head"))
    assert.are.equal(200, res.status)
    res = assert(lc.http(port, "GET", "/echo?x=1", { headers = { ["X-Custom"] = "kept" } }))
    local echo = res.body
    assert.is_truthy(echo:match('"target": "/echo%?x=1"'))
    assert.is_truthy(echo:match('"x%-custom": "kept"'))
    assert.is_truthy(echo:match('"x%-forwarded%-for": "127%.0%.0%.1"'))
    res = assert(lc.http(port, "POST", "/echo", { body = "a body to stream" }))
    assert.are.equal(200, res.status)
    assert.is_truthy(res.body:match('"body": "a body to stream"'))
    assert.is_truthy(res.body:match('"method": "POST"'))
  end)

  it("keeps its upstream connections alive across client requests", function()
    local _, up = lc.upstream()
    local _, port = start_app("proxy.lua", { UPSTREAM = "http://127.0.0.1:" .. up })
    for i = 1, 30 do
      local res = assert(lc.http(port, "GET", "/hello"))
      assert.are.equal("hello", res.body, "request " .. i)
    end
    local connections, requests = lc.upstream_stats(up)
    assert.are.equal(31, requests)
    assert.are.equal(2, connections) -- the proxy's one, and the stats request's
  end)

  it("answers 502 for an upstream that is down or broken, 504 for a silent one", function()
    local _, up = lc.upstream()
    local _, down = start_app("proxy.lua", { UPSTREAM = "http://127.0.0.1:1" })
    local res = assert(lc.http(down, "GET", "/"))
    assert.are.equal(502, res.status)
    assert.is_truthy(res.body:match("connection refused"))
    local _, port = start_app("proxy.lua", { UPSTREAM = "http://127.0.0.1:" .. up,
                                             UPSTREAM_TIMEOUT = 500 })
    res = assert(lc.http(port, "GET", "/never"))
    assert.are.equal(504, res.status)
    assert.is_truthy(res.body:match("timeout"))
    res = assert(lc.http(port, "GET", "/malformed"))
    assert.are.equal(502, res.status)
    assert.is_truthy(res.body:match("bad response"))
    res = assert(lc.http(port, "GET", "/hello"))
    assert.are.equal("hello", res.body)
  end)
end)

describe("apps/aggregator.lua", function()
  after_each(lc.cleanup)

  it("calls its three upstreams at once and answers as soon as the slowest does", function()
    local _, up = lc.upstream()
    local base = "http://127.0.0.1:" .. up
    local _, port = start_app("aggregator.lua", {
      UPSTREAMS = base .. "/delay/700," .. base .. "/delay/700," .. base .. "/delay/700" })
    local t0 = lc.now()
    local res = assert(lc.http(port, "GET", "/", { timeout = 10000 }))
    local ms = lc.now() - t0
    assert.are.equal(200, res.status)
    assert.is_truthy(res.body:match('"failed":0'))
    local _, slept = res.body:gsub('"body":"slept 700"', "")
    assert.are.equal(3, slept)
    -- one after another would take 2.1 s
    assert.is_true(ms < 1500, "answered after " .. ms .. " ms (the calls ran one after another?)")
  end)

  it("reports the upstreams that failed and still answers with the others", function()
    local _, up = lc.upstream()
    local base = "http://127.0.0.1:" .. up
    local _, port = start_app("aggregator.lua", {
      UPSTREAMS = base .. "/hello,http://127.0.0.1:1/x," .. base .. "/never",
      UPSTREAM_TIMEOUT = 500 })
    local res = assert(lc.http(port, "GET", "/"))
    assert.are.equal(200, res.status)
    assert.is_truthy(res.body:match('"failed":2'))
    assert.is_truthy(res.body:match('"error":"connection refused"'))
    assert.is_truthy(res.body:match('"error":"timeout"'))
  end)
end)
