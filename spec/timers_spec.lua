-- Timers (setTimeout, setInterval, setImmediate and their clear functions,
-- and the Timeout object's ref/unref/hasRef/refresh), end to end. Apps
-- record what ran in a list and print it from process "exit", so each test
-- reads one line that holds the whole order.
local lc = require("lc")

local function run(source)
  return lc.start({ lc.write_app(source) })
end

-- Every app gets `note(x)` and prints "ORDER a,b,c" when it exits.
local prelude = [[
  local order = {}
  local function note(x) order[#order + 1] = tostring(x) end
  process.on("exit", function() print("ORDER", table.concat(order, ",")) end)
]]

local function order_of(source)
  local p = run(prelude .. source)
  assert.are.equal(0, p:wait_exit())
  return (p:wait_for("ORDER\t([^\n]*)"))
end

describe("timers", function()
  after_each(lc.cleanup)

  it("runs setTimeout callbacks in the order of their delays", function()
    assert.are.equal("a,b,c", order_of([[
      setTimeout(function() note("c") end, 40)
      setTimeout(function() note("a") end, 1)
      setTimeout(function() note("b") end, 15)
    ]]))
  end)

  it("waits the full delay for a timeout set after slow work at the top level", function()
    -- The script works for 100 ms before it sets a 50 ms timeout: the
    -- timeout counts from when it was set, not from when the loop was made.
    local p = run(prelude .. [[
      local function ms(t) local d = process.hrtime(t) return d[1] * 1000 + d[2] / 1e6 end
      local busy = process.hrtime()
      repeat until ms(busy) >= 100
      local set = process.hrtime()
      setTimeout(function() note(("%d"):format(ms(set))) end, 50)
    ]])
    assert.are.equal(0, p:wait_exit())
    local after = tonumber((p:wait_for("ORDER\t(%d+)")))
    assert.is_true(after >= 49, "a 50 ms timeout fired " .. after .. " ms after it was set")
  end)

  it("runs timeouts with equal delays in the order they were set", function()
    assert.are.equal("1,2,3,4", order_of([[
      for i = 1, 4 do setTimeout(function() note(i) end, 5) end
    ]]))
  end)

  it("passes setTimeout's extra arguments to the callback, nils included", function()
    assert.are.equal("x,nil,3,n=3", order_of([[
      setTimeout(function(...)
        local a, b, c = ...
        note(a) note(b) note(c) note("n=" .. select("#", ...))
      end, 1, "x", nil, 3)
    ]]))
  end)

  it("treats a missing, negative or non-number delay as 1 ms", function()
    assert.are.equal("missing,negative,string", order_of([[
      setTimeout(function() note("missing") end)
      setTimeout(function() note("negative") end, -10)
      setTimeout(function() note("string") end, "soon")
    ]]))
  end)

  it("refuses a callback that is not a function", function()
    assert.are.equal("setTimeout,setInterval,setImmediate", order_of([[
      for _, name in ipairs({ "setTimeout", "setInterval", "setImmediate" }) do
        local ok, err = pcall(_G[name], "not a function", 1)
        if not ok and err:find("callback must be a function", 1, true) then note(name) end
      end
    ]]))
  end)

  it("never runs a timeout cleared before it fires", function()
    assert.are.equal("cleared,checked:false", order_of([[
      local fired = false
      local t = setTimeout(function() fired = true note("fired") end, 10)
      clearTimeout(t)
      note("cleared")
      setTimeout(function() note("checked:" .. tostring(fired)) end, 40)
    ]]))
  end)

  it("never runs a timeout cleared by an earlier timer's callback", function()
    assert.are.equal("first,checked:false", order_of([[
      local fired = false
      local later = setTimeout(function() fired = true note("later") end, 20)
      setTimeout(function() note("first") clearTimeout(later) end, 1)
      setTimeout(function() note("checked:" .. tostring(fired)) end, 50)
    ]]))
  end)

  it("ignores clearTimeout on a fired timer or on nil", function()
    assert.are.equal("fired,done", order_of([[
      local t
      t = setTimeout(function()
        note("fired")
        setTimeout(function() clearTimeout(t) clearTimeout(nil) note("done") end, 1)
      end, 1)
    ]]))
  end)

  it("fires setInterval repeatedly until clearInterval, then lets the process exit", function()
    assert.are.equal("1,2,3,after:3", order_of([[
      local n = 0
      local iv
      iv = setInterval(function()
        n = n + 1
        note(n)
        if n == 3 then clearInterval(iv) end
      end, 5)
      setTimeout(function() note("after:" .. n) end, 100)
    ]]))
  end)

  it("passes setInterval's extra arguments on every tick", function()
    assert.are.equal("a-b,a-b", order_of([[
      local n, iv = 0, nil
      iv = setInterval(function(x, y)
        n = n + 1
        note(x .. "-" .. y)
        if n == 2 then clearInterval(iv) end
      end, 2, "a", "b")
    ]]))
  end)

  it("runs setImmediate after the current callback and before a setTimeout(0) set with it", function()
    assert.are.equal("timer,sync,immediate,timeout0", order_of([[
      setTimeout(function()
        note("timer")
        setTimeout(function() note("timeout0") end, 0)
        setImmediate(function() note("immediate") end)
        note("sync")
      end, 1)
    ]]))
  end)

  it("runs immediates in the order they were queued, with their arguments", function()
    assert.are.equal("main,1:a,2:b,3:c", order_of([[
      setImmediate(function(x) note("1:" .. x) end, "a")
      setImmediate(function(x) note("2:" .. x) end, "b")
      setImmediate(function(x) note("3:" .. x) end, "c")
      note("main")
    ]]))
  end)

  it("runs an immediate queued by an immediate in the next loop iteration, after due timers", function()
    -- The first immediate busy-waits past the 1 ms timeout, so that timer is
    -- due when the next iteration starts: it runs before the second immediate.
    assert.are.equal("timer,first,timeout,second", order_of([[
      setTimeout(function()
        note("timer")
        setTimeout(function() note("timeout") end, 1)
        setImmediate(function()
          note("first")
          setImmediate(function() note("second") end)
          local t0 = process.hrtime()
          repeat local d = process.hrtime(t0) until d[1] > 0 or d[2] > 5e6
        end)
      end, 1)
    ]]))
  end)

  it("still runs the immediates queued after one that throws, when uncaughtException handles it", function()
    assert.are.equal("first,caught,second,third", order_of([[
      process.on("uncaughtException", function() note("caught") end)
      setImmediate(function() note("first") error("immediate failed") end)
      setImmediate(function() note("second") end)
      setImmediate(function() note("third") end)
    ]]))
  end)

  it("reports hasRef() false for an unref'd immediate, and true again after ref()", function()
    assert.are.equal("false,true,ran", order_of([[
      local im = setImmediate(function() note("ran") end)
      im:unref()
      note(im:hasRef())
      im:ref()
      note(im:hasRef())
    ]]))
  end)

  it("never runs an immediate cleared with clearImmediate", function()
    assert.are.equal("kept,also kept", order_of([[
      local dropped = setImmediate(function() note("dropped") end)
      setImmediate(function()
        note("kept")
        clearImmediate(dropped)
      end)
      local dropped2
      setImmediate(function() clearImmediate(dropped2) end)
      dropped2 = setImmediate(function() note("dropped2") end)
      setImmediate(function() note("also kept") end)
      clearImmediate(dropped)
    ]]))
  end)

  it("lets the process exit while an unref'd timer is pending", function()
    local p = run(prelude .. [[
      local t = setTimeout(function() note("unref'd timer fired") end, 3000)
      note("before:" .. tostring(t:hasRef()))
      t:unref()
      note("after:" .. tostring(t:hasRef()))
    ]])
    assert.are.equal(0, p:wait_exit(1500))
    assert.are.equal("before:true,after:false", p:wait_for("ORDER\t([^\n]*)"))
  end)

  it("keeps the process alive again for a timer ref'd after unref", function()
    assert.are.equal("true,fired", order_of([[
      local t = setTimeout(function() note("fired") end, 20)
      t:unref()
      t:ref()
      note(t:hasRef())
    ]]))
  end)

  it("runs an unref'd interval while other work keeps the process alive", function()
    local out = order_of([[
      local iv = setInterval(function() note("tick") end, 5)
      iv:unref()
      setTimeout(function() note("end") end, 60)
    ]])
    assert.is_truthy(out:match("^tick,tick,[tick,]*end"), out)
  end)

  it("reports hasRef() false for a cleared timer", function()
    assert.are.equal("true,false", order_of([[
      local t = setTimeout(function() note("fired") end, 10)
      note(t:hasRef())
      clearTimeout(t)
      note(t:hasRef())
    ]]))
  end)

  it("treats ref(), unref() and refresh() on a cleared timer as no-ops", function()
    assert.are.equal("unref,ref,refresh,false,end", order_of([[
      local t = setTimeout(function() note("cleared timer fired") end, 5)
      clearTimeout(t)
      for _, m in ipairs({ "unref", "ref", "refresh" }) do
        local ok, err = pcall(t[m], t)
        note(ok and m or (m .. " failed: " .. tostring(err)))
      end
      note(t:hasRef())
      setTimeout(function() note("end") end, 30)
    ]]))
  end)

  it("runs a timer that already fired again after refresh()", function()
    assert.are.equal("fired,refreshed,fired", order_of([[
      local t
      t = setTimeout(function() note("fired") end, 5)
      setTimeout(function() note("refreshed") t:refresh() end, 20)
    ]]))
  end)

  it("starts the countdown again with refresh()", function()
    -- Refreshed 25 ms in, a 40 ms timeout fires 40 ms after the refresh,
    -- not 15 ms after it as it would have.
    local p = run(prelude .. [[
      local refreshed
      local t = setTimeout(function()
        local d = process.hrtime(refreshed)
        note(("fired:%d"):format(d[1] * 1000 + d[2] / 1e6))
      end, 40)
      setTimeout(function()
        note("refresh")
        refreshed = process.hrtime()
        t:refresh()
      end, 25)
    ]])
    assert.are.equal(0, p:wait_exit())
    local after = p:wait_for("ORDER\trefresh,fired:(%d+)")
    assert.is_true(tonumber(after) >= 35, "fired " .. after .. " ms after the refresh")
  end)
end)
