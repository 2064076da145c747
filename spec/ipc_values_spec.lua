-- What a message keeps on its way between processes (LuaJIT's string.buffer
-- format): numbers to the last bit and their kind, tables with their holes
-- and odd keys, strings byte for byte, big messages, the size limit, and the
-- values that cannot cross. Each value goes master -> worker -> master, so
-- both directions are checked.
local lc = require("lc")

-- The app the value tests share: the worker sends every message back; the
-- master runs CHECKS (name -> function(sent, got) -> ok[, why]) on each
-- value in VALUES after its round trip, prints "BAD name why" for each
-- failure and "CHECKED n" at the end.
local ROUND_TRIP = [[
local ffi = require("ffi")
if cluster.isWorker then
  process.on("message", function(m) process.send(m) end)
  return
end
local names, i = {}, 0
for name in pairs(VALUES) do names[#names + 1] = name end
table.sort(names)
local w = cluster.fork()
w:on("online", function()
  for _, name in ipairs(names) do w:send({ name = name, value = VALUES[name] }) end
end)
w:on("message", function(m)
  i = i + 1
  local ok, why = CHECKS[m.name](VALUES[m.name], m.value)
  if not ok then print(("BAD %s %s"):format(m.name, tostring(why))) end
  if i == #names then
    print("CHECKED " .. i)
    w:disconnect()
  end
end)
]]

local function round_trip(values_and_checks)
  local p = lc.run(values_and_checks .. ROUND_TRIP)
  local n = tonumber(p:wait_for("CHECKED (%d+)", 20000))
  assert.are.equal(0, p:wait_exit())
  local bad = {}
  for line in p:output():gmatch("BAD [^\n]*") do bad[#bad + 1] = line end
  assert.are.same({}, bad)
  return n
end

describe("IPC values", function()
  after_each(lc.cleanup)

  it("keeps numbers exact and of their kind: integers, floats, 2^53, -0.0, NaN, infinities, int64", function()
    local n = round_trip([[
      local ffi = require("ffi")
      local function bits(x) return ("%a"):format(x) end
      local function same_number(a, b)
        if type(b) ~= "number" then return false, type(b) end
        if a ~= a then return b ~= b, "not NaN" end
        if bits(a) ~= bits(b) then return false, bits(a) .. " became " .. bits(b) end
        -- An integer stays one (prints without a point), a float keeps its fraction.
        return tostring(a) == tostring(b), tostring(a) .. " became " .. tostring(b)
      end
      local function same_cdata(a, b)
        return type(b) == "cdata" and ffi.istype(ffi.typeof(a), b) and tostring(a) == tostring(b),
               tostring(b)
      end
      VALUES = {
        int = 3, negative_int = -17, float = 3.5, tiny_float = 0.1 + 0.2,
        two_53 = 2^53, two_53_plus_2 = 2^53 + 2, minus_two_53 = -2^53, two_63 = 2^63,
        minus_zero = -0.0, nan = 0 / 0, inf = 1 / 0, minus_inf = -1 / 0,
        denormal = 5e-324, huge = 1.7976931348623157e308,
        int64 = 0x4000000000000001LL, uint64 = 0xffffffffffffffffULL,
      }
      CHECKS = setmetatable({ int64 = same_cdata, uint64 = same_cdata },
                            { __index = function() return same_number end })
      -- -0.0 is equal to 0: its sign must still be there.
      CHECKS.minus_zero = function(_, b) return 1 / b == -1 / 0, "lost its sign" end
    ]])
    assert.are.equal(16, n)
  end)

  it("keeps tables as they were: holes, sparse arrays, t[0], odd keys, nesting, empty ones", function()
    local n = round_trip([[
      local function deep(t, n) local c = t for _ = 1, n do c.next = {} c = c.next end c.bottom = true return t end
      local function count(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end
      local function same(a, b)
        if type(a) ~= type(b) then return false end
        if type(a) ~= "table" then return a == b end
        if count(a) ~= count(b) then return false end
        for k, v in pairs(a) do
          if type(k) ~= "table" and not same(v, b[k]) then return false end
        end
        return true
      end
      local function check(a, b) return same(a, b), "differs" end
      VALUES = {
        holes = { 1, nil, 3, nil, nil, 6 },
        leading_holes = { nil, nil, "third" },
        sparse = { [1] = "a", [1000000] = "far", [2^40] = "farther" },
        zero_index = { [0] = "zero", "one", "two" },
        odd_keys = { [-1] = "negative", [1.5] = "fraction", [true] = "yes", [false] = "no",
                     ["with space"] = 1, [""] = "empty key" },
        mixed = { 10, 20, 30, name = "mixed", { nested = { 1, 2 } } },
        empty = {},
        empties = { {}, { {} }, list = {} },
        nested_99 = deep({}, 98),
        long_array = (function() local t = {} for i = 1, 10000 do t[i] = i * 0.5 end return t end)(),
        wide_hash = (function() local t = {} for i = 1, 10000 do t["k" .. i] = i end return t end)(),
        table_key = { [{ inner = "key" }] = "value" },
      }
      CHECKS = setmetatable({}, { __index = function() return check end })
      CHECKS.holes = function(a, b)
        return b[1] == 1 and b[2] == nil and b[3] == 3 and b[4] == nil and b[6] == 6 and count(b) == 3,
               "holes moved"
      end
      CHECKS.table_key = function(a, b)
        local k, v = next(b)
        return type(k) == "table" and k.inner == "key" and v == "value" and next(b, k) == nil,
               "the key is not the table it was"
      end
    ]])
    assert.are.equal(12, n)
  end)

  it("delivers strings byte for byte: empty, every byte value, NULs, long ones", function()
    local n = round_trip([[
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local all = table.concat(bytes)
      VALUES = {
        empty = "", nul = "\0", nuls = "a\0b\0\0c", every_byte = all,
        invalid_utf8 = "\255\254\192\128", utf8 = "日本語 😀",
        long_binary = all:rep(4096),               -- 1 MiB, NULs and all
        just_under_copy = ("c"):rep(16 * 1024 - 1), -- copied
        just_over_copy = ("r"):rep(16 * 1024),      -- sent from the string
        in_table = { s = all:rep(100), t = { all } },
      }
      local function same(a, b)
        if type(a) == "table" then return b.s == a.s and b.t[1] == a.t[1] end
        return a == b
      end
      CHECKS = setmetatable({}, { __index = function()
        return function(a, b) return same(a, b), "bytes differ" end
      end })
    ]])
    assert.are.equal(10, n)
    -- Also at the top level, where a string is sent as it is, not encoded.
    local p = lc.run([[
      if cluster.isWorker then
        process.on("message", function(m) process.send(m) end)
        return
      end
      local sent = { "", "\0", ("\0\1\2\255"):rep(300000) }
      local w, i = cluster.fork(), 0
      w:on("online", function() for _, s in ipairs(sent) do w:send(s) end end)
      w:on("message", function(m)
        i = i + 1
        print(("STRING %d %s %d"):format(i, tostring(m == sent[i]), #m))
        if i == #sent then w:disconnect() end
      end)
    ]])
    assert.are.same({ "true", "0" }, { p:wait_for("STRING 1 (%a+) (%d+)") })
    assert.are.same({ "true", "1" }, { p:wait_for("STRING 2 (%a+) (%d+)") })
    assert.are.same({ "true", "1200000" }, { p:wait_for("STRING 3 (%a+) (%d+)", 10000) })
    assert.are.equal(0, p:wait_exit())
  end)

  it("delivers 1 MiB and 16 MiB messages intact both ways", function()
    local p = lc.run([[
      local MIB = 1024 * 1024
      -- n bytes, each 4 KiB saying where it is: a lost, doubled or moved
      -- piece shows, and so does a changed byte.
      local FILL = ("0123456789abcdef"):rep(256):sub(1, 4088)
      local function pattern(n, tag)
        local parts = {}
        for i = 1, math.ceil(n / 4096) do parts[i] = ("%s%07d"):format(tag, i) .. FILL end
        return table.concat(parts):sub(1, n)
      end
      local sizes = { MIB, 16 * MIB }
      if cluster.isWorker then
        process.on("message", function(m)
          local ok = #m.data == m.size and m.data == pattern(m.size, m.tag)
          process.send({ size = m.size, worker_saw = ok, data = pattern(m.size, "W") })
          process.send(pattern(m.size, "S")) -- and as a bare string
        end)
        return
      end
      local w, got = cluster.fork(), 0
      w:on("online", function()
        for _, size in ipairs(sizes) do w:send({ size = size, tag = "M", data = pattern(size, "M") }) end
      end)
      w:on("message", function(m)
        got = got + 1
        if type(m) == "string" then
          print(("MASTER SAW STRING %d %s"):format(#m, tostring(m == pattern(#m, "S"))))
        else
          print(("WORKER SAW %d %s"):format(m.size, tostring(m.worker_saw)))
          print(("MASTER SAW %d %s"):format(#m.data, tostring(m.data == pattern(m.size, "W"))))
        end
        if got == 2 * #sizes then w:disconnect() end
      end)
    ]])
    for _, size in ipairs({ "1048576", "16777216" }) do
      assert.are.equal("true", p:wait_for("WORKER SAW " .. size .. " (%a+)", 20000))
      assert.are.equal("true", p:wait_for("MASTER SAW " .. size .. " (%a+)", 20000))
      assert.are.equal("true", p:wait_for("MASTER SAW STRING " .. size .. " (%a+)", 20000))
    end
    assert.are.equal(0, p:wait_exit(20000))
  end)

  it("refuses a table over --max-message-size in the sender with its size, and the channel goes on", function()
    local source = [[
      local function try(send)
        local ok, err = pcall(send, { data = ("x"):rep(200000) })
        print(("%s REFUSED %s %s"):format(cluster.isMaster and "MASTER" or "WORKER",
                                          tostring(not ok), tostring(err)))
        send({ after = "the refused one" })
      end
      if cluster.isWorker then
        try(process.send)
        process.on("message", function(m) process.send({ echo = m.after }) end)
        return
      end
      local w = cluster.fork()
      w:on("online", function() try(function(m) return w:send(m) end) end)
      w:on("message", function(m)
        if m.after then print("MASTER GOT " .. m.after) end
        if m.echo then print("ECHO " .. m.echo) w:disconnect() end
      end)
    ]]
    local p = lc.start({ "--max-message-size", "100000", lc.write_app(source) })
    for _, side in ipairs({ "MASTER", "WORKER" }) do
      local refused, err = p:wait_for(side .. " REFUSED (%a+) ([^\n]*)")
      assert.are.equal("true", refused)
      assert.truthy(err:find("cannot send message: 2000%d%d bytes is over the 100000%-byte limit"), err)
    end
    assert.are.equal("the refused one", p:wait_for("MASTER GOT ([^\n]*)"))
    assert.are.equal("the refused one", p:wait_for("ECHO ([^\n]*)"))
    assert.are.equal(0, p:wait_exit())
    assert.are.equal(0, p:count("channel closed"))
  end)

  it("refuses what cannot cross with a clear error in the sender, and lets cjson.null through", function()
    local p = lc.run([[
      local ffi = require("ffi")
      local function f() end
      local cycle = {}
      cycle.self = cycle
      local bad = {
        { "function", { f = f } },
        { "userdata", { io.stdout } },
        { "thread", coroutine.create(f) },
        { "light userdata", { debug.upvalueid(function() return cycle end, 1) } },
        { "cycle", cycle },
        { "cdata", { ffi.new("int[1]") } },
      }
      local function try_all(side, send)
        for _, case in ipairs(bad) do
          local ok, err = pcall(send, case[2])
          print(("%s %s %s %s"):format(side, case[1], tostring(ok), tostring(err)))
        end
        send({ null = require("cjson").null, after = true })
      end
      if cluster.isWorker then
        try_all("WORKER", process.send)
        return
      end
      local w = cluster.fork()
      w:on("online", function() try_all("MASTER", function(m) return w:send(m) end) end)
      w:on("message", function(m)
        print("NULL CROSSED " .. tostring(m.null == require("cjson").null and m.after))
        w:disconnect()
      end)
    ]])
    assert.are.equal("true", p:wait_for("NULL CROSSED (%a+)"))
    assert.are.equal(0, p:wait_exit())
    local words = {
      ["function"] = "a function cannot be sent",
      userdata = "a userdata cannot be sent",
      thread = "a thread cannot be sent",
      ["light userdata"] = "a light userdata %(a C pointer%) cannot be sent",
      cycle = "nested over 100 levels %(a cycle%?%)",
      cdata = "a cdata cannot be sent",
    }
    for _, side in ipairs({ "MASTER", "WORKER" }) do
      for what, expected in pairs(words) do
        local ok, err = p:wait_for(side .. " " .. what .. " (%a+) ([^\n]*)")
        assert.are.equal("false", ok)
        assert.truthy(err:find("cannot send message: ", 1, true), err)
        assert.truthy(err:find(expected), what .. ": " .. err)
      end
    end
    assert.are.equal(0, p:count("channel closed"))
  end)
end)
