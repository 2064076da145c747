-- TLS across workers: a session made by one worker resumes on another (the
-- master's ticket keys), keys rotate on schedule (the previous one still
-- opens tickets, the one before that does not), the scheduling policies all
-- do their handshakes in the worker, sessions survive a reload (the keys
-- are the master's), and a reload re-reads the certificate.
-- openssl s_client is the client: an independent peer that says whether
-- it resumed ("Reused") and which worker answered.
local lc = require("lc")
local certs = require("certs")

local set = certs.make()

-- A managed cluster of n workers serving HTTPS; each answer names the
-- worker's pid and how many ticket keys it has been given.
local APP = [[
local https = require("https")
local core = require("luacluster.core")
local function slurp(p) local f = assert(io.open(p)) local s = f:read("*a") f:close() return s end
local dir = os.getenv("CERTS")
local server = https.createServer({ key = slurp(dir .. "/live.key"), cert = slurp(dir .. "/live.crt") },
  function(req, res)
    res:finish(("pid=%d keys=%d\n"):format(process.pid, core.tls_stats().ticket_keys))
  end)
server:listen(0, "127.0.0.1", function()
  print("PORT " .. server:address().port .. " pid " .. process.pid)
end)
]]

local function sh(cmd)
  local f = io.popen(cmd .. " 2>&1")
  local out = f:read("*a")
  f:close()
  return out
end

local started = 0

local function start(n, env, extra)
  started = started + 1
  local dir = ("%s/live%d"):format(lc.tmpdir(), started)
  os.execute(("mkdir -p '%s' && cp '%s' '%s/live.crt' && cp '%s' '%s/live.key'")
             :format(dir, set.path("server"), dir, set.path("server", "key"), dir))
  local control = ("%s/ctl%d.sock"):format(lc.tmpdir(), started)
  local app = lc.write_app(APP)
  local args = { "-w", tostring(n), "--control", control }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  args[#args + 1] = app
  local e = { CERTS = dir }
  for k, v in pairs(env or {}) do e[k] = v end
  local p = lc.start(args, { env = e })
  local port = p:port()
  lc.wait_until(function() return p:count("PORT %d+ pid") >= n end, 10000,
                function() return n .. " workers listening:\n" .. p:output() end)
  return p, port, dir, control
end

-- One HTTPS request with s_client: {resumed=, pid=, keys=}. sess_in and
-- sess_out are session files; flags are more s_client options.
local function s_client(port, sess_in, sess_out, flags)
  local cmd = ("printf 'GET / HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | " ..
               "openssl s_client -connect 127.0.0.1:%d -servername localhost -CAfile %s -ign_eof %s%s%s")
              :format(port, set.path("ca"), flags or "",
                      sess_in and (" -sess_in " .. sess_in) or "",
                      sess_out and (" -sess_out " .. sess_out) or "")
  local out = sh(cmd)
  local pid, keys = out:match("pid=(%d+) keys=(%d+)")
  assert(pid, "no answer from the server:\n" .. out)
  return { resumed = out:find("\nReused, ", 1, true) ~= nil, new = out:find("\nNew, ", 1, true) ~= nil,
           pid = tonumber(pid), keys = tonumber(keys), out = out }
end

-- Connects with the session until another worker than pid answers; that
-- answer.
local function on_another_worker(port, sess, pid, flags)
  for _ = 1, 20 do
    local r = s_client(port, sess, nil, flags)
    if r.pid ~= pid then return r end
  end
  error("every connection went to worker " .. pid)
end

describe("TLS in a cluster", function()
  after_each(lc.cleanup)

  for _, version in ipairs({ "-tls1_3", "-tls1_2" }) do
    it("resumes on another worker a session one worker made (" .. version .. ")", function()
      local _, port = start(2)
      local sess = ("%s/sess%s-%d"):format(lc.tmpdir(), version, started)
      local first = s_client(port, nil, sess, version)
      assert.is_true(first.new, first.out)
      local other = on_another_worker(port, sess, first.pid, version)
      assert.is_true(other.resumed, other.out)
      -- and back on the first one too
      local back
      for _ = 1, 20 do
        back = s_client(port, sess, nil, version)
        if back.pid == first.pid then break end
      end
      assert.are.equal(first.pid, back.pid)
      assert.is_true(back.resumed, back.out)
    end)
  end

  for _, policy in ipairs({ "none", "reuseport", "sticky" }) do
    it("does the handshake in the worker with the " .. policy .. " policy", function()
      local _, port = start(2, nil, { "--sched", policy })
      local sess = ("%s/sess-%s-%d"):format(lc.tmpdir(), policy, started)
      local first = s_client(port, nil, sess)
      assert.is_true(first.new, first.out)
      local again = s_client(port, sess)
      assert.is_true(again.resumed, again.out)
    end)
  end

  it("rotates the ticket keys: the previous key still resumes, the one before not", function()
    local p, port = start(2, { LUACLUSTER_TLS_TICKET_ROTATE = "1.5" })
    local sess = ("%s/sess-rot-%d"):format(lc.tmpdir(), started)
    local first = s_client(port, nil, sess)
    local made = first.keys
    -- Wait for the next key (every worker has one more), then resume.
    local function wait_keys(n)
      lc.wait_until(function()
        local r = s_client(port)
        return r.keys >= n
      end, 10000, function() return "key " .. n .. ":\n" .. p:output() end)
    end
    wait_keys(made + 1)
    local after_one = s_client(port, sess)
    assert.is_true(after_one.resumed, after_one.out)
    wait_keys(made + 2)
    local after_two = s_client(port, sess)
    assert.is_true(after_two.new, after_two.out)
  end)

  it("keeps sessions across a reload, and re-reads the certificate on one", function()
    local p, port, dir, control = start(2)
    local function serial()
      return sh(("echo | openssl s_client -connect 127.0.0.1:%d -servername localhost 2>/dev/null" ..
                 " | openssl x509 -noout -serial"):format(port))
    end
    local function reload(n)
      local c = lc.spawn({ lc.bin, "reload", "--control", control })
      assert.are.equal(0, c:wait_exit(30000), c:output())
      lc.wait_until(function() return p:count("reloaded 2 worker") >= n end, 30000,
                    function() return "reload " .. n .. ":\n" .. p:output() end)
    end
    local old = serial()
    assert.matches("^serial=", old)
    local sess = ("%s/sess-reload-%d"):format(lc.tmpdir(), started)
    local first = s_client(port, nil, sess)
    -- new workers, the same keys (the master's) and certificate: the
    -- session resumes (nginx makes new keys on a reload)
    reload(1)
    local after = s_client(port, sess)
    assert.are_not.equal(first.pid, after.pid)
    assert.is_true(after.resumed, after.out)
    -- a renewed certificate: the new workers serve it, and a session made
    -- with the old one does a full handshake
    os.execute(("cp '%s' '%s/live.crt' && cp '%s' '%s/live.key'")
               :format(set.path("server2"), dir, set.path("server2", "key"), dir))
    reload(2)
    local new = serial()
    assert.matches("^serial=", new)
    assert.are_not.equal(old, new)
    for _ = 1, 4 do assert.are.equal(new, serial()) end
    local r = s_client(port, sess)
    assert.is_true(r.new, r.out)
  end)
end)
