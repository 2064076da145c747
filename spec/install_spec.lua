-- Installed like system software: `cmake --install` (make install) into a
-- scratch DESTDIR, the embedding example built against the installed
-- luacluster.pc and run; the man page; the Debian package built with CPack,
-- unpacked into a scratch root, and hello run from it.
local lc = require("lc")

local build = lc.bin:match("^(.*)/[^/]*$")

local function sh(cmd)
  local p = io.popen("(" .. cmd .. ") 2>&1; echo \"EXIT $?\"")
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("EXIT (%d+)\n?$"))
  return code, out:gsub("EXIT %d+\n?$", "")
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

local function scratch(name)
  local dir = lc.tmpdir() .. "/" .. name .. tostring(lc.now()):gsub("%.", "")
  assert(os.execute("mkdir -p '" .. dir .. "'") == 0)
  return dir
end

-- Runs apps/server.lua (managed, 2 workers) from the binary at bin on a
-- free port, and checks it answers.
local function serves_hello(bin)
  local port = require("sd").free_port()
  local p = lc.spawn({ bin, "-w", "2", "--control", lc.tmpdir() .. "/hello.sock",
                       lc.source .. "/apps/server.lua" }, { env = { PORT = port } })
  p:wait_for("listening on " .. port)
  local res = assert(lc.http(port, "GET", "/installed"))
  assert.are.equal(200, res.status)
  assert.matches('"url":"/installed"', res.body)
  p:kill("SIGTERM")
  assert.are.equal(0, p:wait_exit(10000))
end

describe("make install", function()
  after_each(lc.cleanup)

  local dest, prefix

  setup(function()
    dest = scratch("destdir")
    prefix = dest .. "/usr/local"
    local code, out = sh("DESTDIR='" .. dest .. "' cmake --install '" .. build ..
                         "' --prefix /usr/local")
    assert(code == 0, out)
  end)

  it("puts the binary, library, header, pkg-config file, man page and unit under the prefix", function()
    for _, f in ipairs({ "bin/luacluster", "lib/libluacluster.a", "include/luacluster.h",
                         "lib/pkgconfig/luacluster.pc", "share/man/man1/luacluster.1",
                         "lib/systemd/system/luacluster@.service",
                         "share/doc/luacluster/examples/hello.conf.lua" }) do
      assert.is_true(exists(prefix .. "/" .. f), f .. " is missing")
    end
    local code, out = sh("'" .. prefix .. "/bin/luacluster' --version")
    assert.are.equal(0, code)
    assert.matches("luacluster 0%.1%.0", out)
  end)

  it("builds the README's embedding example with pkg-config and runs it", function()
    local pc = "PKG_CONFIG_PATH='" .. prefix .. "/lib/pkgconfig' pkg-config"
    local code, flags = sh(pc .. " --cflags --libs luacluster")
    assert.are.equal(0, code, flags)
    -- the static dependencies are listed, and the headers are the installed ones
    assert.matches("%-lluacluster", flags)
    assert.matches("luajit", flags)
    assert.matches("uv", flags)
    assert.matches("http_parser", flags)
    assert.matches("cjson", flags)
    assert.matches("%-lm", flags)
    assert.matches("%-ldl", flags)
    assert.matches("%-lpthread", flags)
    assert.matches("%-I" .. prefix:gsub("%p", "%%%0") .. "/lib/pkgconfig/%.%./%.%./include", flags)
    local exe = dest .. "/embed"
    code, out = sh("cc '" .. lc.source .. "/apps/embed/main.c' $(" .. pc ..
                   " --cflags --libs luacluster) -o '" .. exe .. "'")
    assert.are.equal(0, code, out)
    local p = lc.spawn({ exe, lc.source .. "/apps/embed/app.lua" })
    p:wait_for("master: hello, master %(from C%)\n")
    p:wait_for("master got: hello, worker 1 %(from C%)\n")
    assert.are.equal(0, p:wait_exit())
  end)

  it("installs a binary that serves", function()
    serves_hello(prefix .. "/bin/luacluster")
  end)

  it("has a man page that renders and names every option --help lists", function()
    local man = prefix .. "/share/man/man1/luacluster.1"
    local code, out = sh("groff -man -Tutf8 -ww -z '" .. man .. "'")
    assert.are.equal(0, code, out)
    assert.are.equal("", out, "groff warnings:\n" .. out)
    local _, text = sh("groff -man -Tascii -P-cbou '" .. man .. "'")
    local _, help = sh("'" .. lc.bin .. "' --help")
    local n = 0
    for flag in help:gmatch("%-%-[%w%-]+") do
      n = n + 1
      assert.is_truthy(text:find(flag, 1, true), flag .. " is not in the man page")
    end
    assert.is_true(n > 10)
    for _, cmd in ipairs({ "status", "reload", "upgrade", "stop", "scale", "start", "check" }) do
      assert.is_truthy(text:find(cmd, 1, true), cmd)
    end
  end)
end)

describe("make deb", function()
  after_each(lc.cleanup)

  it("builds a Debian package that unpacks into a working luacluster", function()
    local out_dir = scratch("deb")
    local code, out = sh("cpack -G DEB -B '" .. out_dir .. "' --config '" .. build ..
                         "/CPackConfig.cmake'")
    assert.are.equal(0, code, out)
    local _, deb = sh("ls '" .. out_dir .. "'/luacluster_*.deb")
    deb = deb:match("[^\n]+")
    assert.is_truthy(deb, out)
    -- its control fields: a name, the version, what the binary needs at run
    -- time (libc; LuaJIT, libuv and http-parser are linked in)
    local _, info = sh("dpkg-deb -f '" .. deb .. "' Package Version Depends Architecture")
    assert.matches("Package: luacluster", info)
    assert.matches("Version: 0%.1%.0", info)
    assert.matches("Depends: [^\n]*libc6", info)
    local _, needed = sh("objdump -p '" .. lc.bin .. "' | awk '/NEEDED/ {print $2}'")
    if needed:match("libuv") then assert.matches("libuv1", info) end
    if needed:match("luajit") then assert.matches("libluajit", info) end
    local _, files = sh("dpkg-deb -c '" .. deb .. "'")
    for _, f in ipairs({ "./usr/bin/luacluster", "./usr/lib/libluacluster.a",
                         "./usr/include/luacluster.h", "./usr/lib/pkgconfig/luacluster.pc",
                         "./usr/share/man/man1/luacluster.1",
                         "./usr/lib/systemd/system/luacluster@.service" }) do
      assert.is_truthy(files:find(f, 1, true), f .. " is not in the package")
    end
    local root = scratch("root")
    code, out = sh("dpkg -x '" .. deb .. "' '" .. root .. "'")
    assert.are.equal(0, code, out)
    serves_hello(root .. "/usr/bin/luacluster")
  end)
end)
