-- The control socket cannot be hijacked: its directory ($XDG_RUNTIME_DIR/
-- luacluster, else /tmp/luacluster-<uid>) is used only when it is ours and
-- no one else may write in it, checked without following a symlink; and the
-- protocol refuses what is not exactly a request.
local ffi = require("ffi")
local lc = require("lc")

pcall(ffi.cdef, [[
struct sockaddr_un { uint16_t sun_family; char sun_path[108]; };
]])

local APP = [[
print("UP " .. process.env.LUACLUSTER_INSTANCE)
local s = http.createServer(function(req, res) res:finish("ok") end)
s:listen(0, "127.0.0.1")
]]

local xdg_count = 0
-- A fresh XDG_RUNTIME_DIR (0700, ours), as a login session has.
local function fresh_xdg()
  xdg_count = xdg_count + 1
  local dir = ("%s/xdg%d"):format(lc.tmpdir(), xdg_count)
  os.execute("mkdir -m 700 -p '" .. dir .. "'")
  return dir
end

local function sh(cmd)
  assert(os.execute(cmd) == 0, cmd)
end

local function mode_of(path)
  local f = io.popen("stat -c %a '" .. path .. "'")
  local m = f:read("*l")
  f:close()
  return m
end

-- A raw client: sends bytes (or nothing) and reads the reply until close.
local function raw_request(path, bytes, timeout)
  local fd = ffi.C.socket(1, 1, 0) -- AF_UNIX, SOCK_STREAM
  local sa = ffi.new("struct sockaddr_un")
  sa.sun_family = 1
  ffi.copy(sa.sun_path, path)
  assert(ffi.C.connect(fd, sa, ffi.sizeof(sa)) == 0, "connect " .. path)
  if bytes then
    assert(ffi.C.write(fd, bytes, #bytes) == #bytes)
  end
  local out, buf = {}, ffi.new("char[4096]")
  local pfd = ffi.new("struct pollfd[1]")
  pfd[0].fd = fd
  pfd[0].events = 1
  local deadline = lc.now() + (timeout or 5000)
  local closed = false
  while lc.now() < deadline do
    if ffi.C.poll(pfd, 1, 100) > 0 then
      local n = tonumber(ffi.C.read(fd, buf, 4096))
      if n <= 0 then closed = true break end
      out[#out + 1] = ffi.string(buf, n)
    end
  end
  ffi.C.close(fd)
  return table.concat(out), closed
end

local function start_managed(xdg)
  local app = lc.write_app(APP)
  local p = lc.start({ "-w", "1", app }, { env = { XDG_RUNTIME_DIR = xdg } })
  return p, app
end

local function socket_in(dir)
  local f = io.popen("ls '" .. dir .. "'")
  local name = f:read("*l")
  f:close()
  return name and (dir .. "/" .. name)
end

describe("the control directory", function()
  after_each(lc.cleanup)

  it("lives in $XDG_RUNTIME_DIR/luacluster, made 0700, and the commands find it there", function()
    local xdg = fresh_xdg()
    local p, app = start_managed(xdg)
    p:wait_for("UP 0")
    assert.are.equal("700", mode_of(xdg .. "/luacluster"))
    assert.is_truthy(socket_in(xdg .. "/luacluster"):match("%.sock$"))
    local q = lc.start({ "status", app }, { env = { XDG_RUNTIME_DIR = xdg } })
    assert.are.equal(0, q:wait_exit(5000))
    assert.is_truthy(q:output():find("listening", 1, true), q:output())
  end)

  local function refused(prepare, reason)
    local xdg = fresh_xdg()
    prepare(xdg .. "/luacluster")
    -- The master will not start with it...
    local app = lc.write_app(APP)
    local p, stderr = lc.start_split({ "-w", "1", app }, { env = { XDG_RUNTIME_DIR = xdg } })
    assert.are.equal(1, p:wait_exit(5000))
    assert.is_truthy(stderr():find("refusing the control directory " .. xdg .. "/luacluster", 1, true),
                     stderr())
    assert.is_truthy(stderr():find(reason, 1, true), stderr())
    assert.are.equal(0, p:count("UP"))
    -- ...and the commands will not believe a socket in it.
    local q, qerr = lc.start_split({ "stop", app }, { env = { XDG_RUNTIME_DIR = xdg } })
    assert.are.equal(1, q:wait_exit(5000))
    assert.is_truthy(qerr():find("refusing the control directory", 1, true), qerr())
    assert.is_falsy(q:output():find("stopped", 1, true))
  end

  it("refuses a directory others may write in", function()
    refused(function(dir) sh("mkdir -m 777 '" .. dir .. "' && chmod 777 '" .. dir .. "'") end,
            "group or others may write in it (mode 777)")
  end)

  it("refuses a symlink, even to a directory of ours", function()
    refused(function(dir)
      sh("mkdir -m 700 '" .. dir .. ".real' && ln -s '" .. dir .. ".real' '" .. dir .. "'")
    end, "it is a symlink")
  end)

  it("refuses a directory another user owns", function()
    -- Only root can give a directory to another user; anyone else points
    -- at one of root's through a symlink, refused before its owner is seen.
    local uid = tonumber(io.popen("id -u"):read("*l"))
    if uid == 0 then
      refused(function(dir) sh("mkdir -m 700 '" .. dir .. "' && chown 65534 '" .. dir .. "'") end,
              "it is owned by uid 65534")
    else
      refused(function(dir) sh("ln -s / '" .. dir .. "'") end, "it is a symlink")
    end
  end)
end)

describe("the control protocol", function()
  local p, sock

  before_each(function()
    local xdg = fresh_xdg()
    p = start_managed(xdg)
    p:wait_for("UP 0")
    sock = socket_in(xdg .. "/luacluster")
  end)
  after_each(lc.cleanup)

  it("answers a request line, with CRLF too", function()
    local reply = raw_request(sock, "status\r\n")
    assert.is_truthy(reply:match("^OK\n"), reply)
  end)

  it("refuses scale with trailing garbage, or out of range", function()
    for _, req in ipairs({ "scale 2abc\n", "scale -1\n", "scale 0\n", "scale 99999\n", "scale \n" }) do
      local reply = raw_request(sock, req)
      assert.is_truthy(reply:match("^ERR\nscale wants a count from 1 to 4096"), req .. " -> " .. reply)
    end
    assert.are.equal(0, p:count("scaling"))
  end)

  it("refuses a NUL byte, an overlong line and garbage", function()
    local reply, closed = raw_request(sock, "stat\0us\n")
    assert.is_truthy(reply:match("^ERR\n[^\n]*NUL"), reply)
    assert.is_true(closed)
    reply, closed = raw_request(sock, ("a"):rep(300))
    assert.is_truthy(reply:match("^ERR\nrequest too long"), reply)
    assert.is_true(closed)
    reply = raw_request(sock, "\1\27[2Jjunk\n")
    assert.are.equal("ERR\nunknown command '??[2Jjunk'\n", reply)
    assert.is_false(p:poll())
  end)

  it("lets go of a client that sends nothing", function()
    local t0 = lc.now()
    local reply, closed = raw_request(sock, nil, 8000)
    assert.is_true(closed)
    assert.is_truthy(reply:match("^ERR\nno request within 5 s"), reply)
    assert.is_true(lc.now() - t0 < 7000)
  end)

  it("rejects luacluster scale 2abc before sending it", function()
    local q, stderr = lc.start_split({ "scale", "2abc", "--control", sock })
    assert.are.equal(1, q:wait_exit(5000))
    assert.is_truthy(stderr():find("usage", 1, true), stderr())
    assert.are.equal(0, p:count("scaling"))
  end)
end)
