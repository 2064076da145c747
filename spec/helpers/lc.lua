-- lc: what the specs use to run real luacluster processes and talk to them.
--
-- Processes are started with posix_spawn in their own process group, with
-- stdout and stderr appended to one log file; lc.cleanup() kills every group
-- it started. Waiting is always polling for a condition with a deadline
-- (lc.wait_until), never sleeping and hoping. Sockets are plain BSD sockets
-- through the FFI, so a test can send any bytes, as slowly as it likes.

local ffi = require("ffi")
local bit = require("bit")

ffi.cdef [[
typedef int pid_t;
typedef unsigned int socklen_t;
typedef struct { uint64_t opaque[32]; } posix_spawn_file_actions_t;
typedef struct { uint64_t opaque[64]; } posix_spawnattr_t;
struct timespec { long tv_sec; long tv_nsec; };
struct pollfd { int fd; short events; short revents; };
struct sockaddr_in { uint16_t sin_family; uint16_t sin_port; uint32_t sin_addr; uint8_t zero[8]; };
struct sockaddr_in6 { uint16_t sin6_family; uint16_t sin6_port; uint32_t flowinfo; uint8_t addr[16]; uint32_t scope; };
struct linger { int l_onoff; int l_linger; };

int posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa);
int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa);
int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *fa, int fd, const char *path, int oflag, int mode);
int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd, int newfd);
int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *fa, const char *path);
int posix_spawnattr_init(posix_spawnattr_t *attr);
int posix_spawnattr_destroy(posix_spawnattr_t *attr);
int posix_spawnattr_setflags(posix_spawnattr_t *attr, short flags);
int posix_spawnattr_setpgroup(posix_spawnattr_t *attr, pid_t pgroup);
int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);
pid_t waitpid(pid_t pid, int *status, int options);
int kill(pid_t pid, int sig);
int nanosleep(const struct timespec *req, struct timespec *rem);
int clock_gettime(int clk, struct timespec *ts);
char *strerror(int errnum);
int socket(int domain, int type, int protocol);
int connect(int fd, const void *addr, socklen_t len);
int setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int shutdown(int fd, int how);
long write(int fd, const void *buf, size_t n);
long read(int fd, void *buf, size_t n);
int close(int fd);
int poll(struct pollfd *fds, unsigned long n, int timeout);
int inet_pton(int af, const char *src, void *dst);
uint16_t htons(uint16_t v);
char *mkdtemp(char *template);
extern char **environ;
]]

local C = ffi.C

local POSIX_SPAWN_SETPGROUP = 0x02
local O_WRONLY, O_CREAT, O_APPEND, O_RDONLY = 1, 64, 1024, 0
local WNOHANG = 1
local AF_INET, AF_INET6, SOCK_STREAM = 2, 10, 1
local SOL_SOCKET, SO_LINGER = 1, 13
local POLLIN, POLLOUT = 1, 4

local SIGNALS = { SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGKILL = 9, SIGUSR1 = 10,
                  SIGSEGV = 11, SIGUSR2 = 12, SIGPIPE = 13, SIGTERM = 15,
                  SIGCONT = 18, SIGSTOP = 19 }
local SIGNAL_NAMES = {}
for k, v in pairs(SIGNALS) do SIGNAL_NAMES[v] = k end

local lc = {}

lc.bin = os.getenv("LUACLUSTER_BIN") or "build/luacluster"
lc.embed_bin = os.getenv("LUACLUSTER_EMBED_BIN") or "build/embed_example"
lc.source = os.getenv("LUACLUSTER_SOURCE") or "."
lc.signals = SIGNALS

-- Time -------------------------------------------------------------------------

function lc.now()
  local ts = ffi.new("struct timespec")
  C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

-- Pauses the test itself (pacing a client, say); never a way to wait for
-- something to happen: use wait_until for that.
function lc.sleep(ms)
  local ts = ffi.new("struct timespec")
  ts.tv_sec = math.floor(ms / 1000)
  ts.tv_nsec = (ms % 1000) * 1e6
  C.nanosleep(ts, nil)
end

-- Polls fn() until it returns a truthy value (returned), or fails the test
-- with `what` (a string or a function giving one) after timeout ms.
function lc.wait_until(fn, timeout, what)
  local deadline = lc.now() + (timeout or 5000)
  while true do
    local v = fn()
    if v then return v end
    if lc.now() > deadline then
      if type(what) == "function" then what = what() end
      error("timed out waiting for " .. tostring(what or "a condition"), 2)
    end
    lc.sleep(10)
  end
end

-- Files ---------------------------------------------------------------------------

local tmp_root

function lc.tmpdir()
  if not tmp_root then
    local buf = ffi.new("char[64]", "/tmp/lcspec-XXXXXX")
    assert(C.mkdtemp(buf) ~= nil, "mkdtemp failed")
    tmp_root = ffi.string(buf)
  end
  return tmp_root
end

local app_count = 0

-- Writes an app script (and optional sibling files: {["server.lua"] = src})
-- into a fresh directory; returns its path.
function lc.write_app(source, siblings, name)
  app_count = app_count + 1
  local dir = lc.tmpdir() .. "/app" .. app_count
  os.execute("mkdir -p '" .. dir .. "'")
  local path = dir .. "/" .. (name or "app.lua")
  local f = assert(io.open(path, "w"))
  f:write(source)
  f:close()
  for file, src in pairs(siblings or {}) do
    local g = assert(io.open(dir .. "/" .. file, "w"))
    g:write(src)
    g:close()
  end
  return path, dir
end

function lc.read_file(path)
  local f = io.open(path, "r")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- Processes ---------------------------------------------------------------------------

local Proc = {}
Proc.__index = Proc
local running = {}

local function cstrings(list)
  local arr = ffi.new("char *[?]", #list + 1)
  local keep = {}
  for i, s in ipairs(list) do
    keep[i] = ffi.new("char[?]", #s + 1, s)
    arr[i - 1] = keep[i]
  end
  arr[#list] = nil
  return arr, keep
end

local function environment(extra)
  local env, i = {}, 0
  while C.environ[i] ~= nil do
    local kv = ffi.string(C.environ[i])
    local k = kv:match("^([^=]*)=")
    if not (extra and k and extra[k] ~= nil) and not (k and k:match("^LUACLUSTER_")) then
      env[#env + 1] = kv
    end
    i = i + 1
  end
  for k, v in pairs(extra or {}) do
    if v ~= false then env[#env + 1] = k .. "=" .. tostring(v) end
  end
  return env
end

-- Starts argv (a list; argv[1] is the program) with opts.env added to the
-- environment (a value of false removes a variable), opts.cwd, and
-- opts.fds as its descriptors 3, 4, ...
function lc.spawn(argv, opts)
  opts = opts or {}
  app_count = app_count + 1
  local log = opts.log or (lc.tmpdir() .. "/proc" .. app_count .. ".log")
  local fa = ffi.new("posix_spawn_file_actions_t")
  local attr = ffi.new("posix_spawnattr_t")
  C.posix_spawn_file_actions_init(fa)
  C.posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0)
  C.posix_spawn_file_actions_addopen(fa, 1, log, bit.bor(O_WRONLY, O_CREAT, O_APPEND), 420)
  C.posix_spawn_file_actions_adddup2(fa, 1, 2)
  -- opts.fds = {fd, ...}: given to the process as descriptors 3, 4, ...
  for i, fd in ipairs(opts.fds or {}) do
    C.posix_spawn_file_actions_adddup2(fa, fd, 2 + i)
  end
  if opts.cwd then C.posix_spawn_file_actions_addchdir_np(fa, opts.cwd) end
  C.posix_spawnattr_init(attr)
  C.posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP)
  C.posix_spawnattr_setpgroup(attr, 0)
  local cargv, keep1 = cstrings(argv)
  local cenv, keep2 = cstrings(environment(opts.env))
  local pid = ffi.new("pid_t[1]")
  local r = C.posix_spawnp(pid, argv[1], fa, attr, cargv, cenv)
  C.posix_spawn_file_actions_destroy(fa)
  C.posix_spawnattr_destroy(attr)
  local _ = keep1, keep2
  assert(r == 0, "posix_spawn " .. argv[1] .. ": " .. ffi.string(C.strerror(r)))
  local p = setmetatable({ pid = pid[0], log = log, argv = argv }, Proc)
  running[#running + 1] = p
  return p
end

-- Runs `luacluster args...` (args may start with flags, then the script).
function lc.start(args, opts)
  local argv = { lc.bin }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return lc.spawn(argv, opts)
end

-- Writes an app (opts.siblings beside it) and runs `luacluster app args...`;
-- returns the process and the app's path.
function lc.run(source, args, opts)
  local app = lc.write_app(source, opts and opts.siblings)
  local argv = { app }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  return lc.start(argv, opts), app
end

-- Runs source as an app to its end; asserts it exited 0 and returns what it
-- printed (stdout and stderr).
function lc.run_ok(source, args, timeout)
  local p = lc.run(source, args)
  local code = p:wait_exit(timeout or 20000)
  local out = p:output()
  if code ~= 0 then error(("the app exited with %s:\n%s"):format(tostring(code), out), 2) end
  return out
end

-- The value of a "key<TAB>value" line an app printed (nil when none).
function lc.field(out, key)
  key = key:gsub("%p", "%%%0")
  return out:match("\n" .. key .. "\t([^\n]*)") or out:match("^" .. key .. "\t([^\n]*)")
end

-- Runs body as an app with a table R in scope and returns R as the app
-- left it, sent back as JSON (a body that sets R.later prints
-- "RESULT <json>" itself). The app must exit 0.
function lc.eval(body)
  local cjson = require("cjson")
  local p = lc.run("local cjson = require('cjson')\nlocal R = {}\n" .. body ..
                   "\nif not R.later then print('RESULT ' .. cjson.encode(R)) end\n")
  local line = p:wait_for("RESULT ([^\n]*)\n")
  assert(p:wait_exit() == 0, "the app exited with an error:\n" .. p:output())
  return cjson.decode(line)
end

-- lc.start() with stderr in a file of its own (the log then holds stdout
-- only); returns the process, a function reading stderr, and its path.
local split_count = 0
function lc.start_split(args, opts)
  split_count = split_count + 1
  local err = ("%s/stderr-%d.txt"):format(lc.tmpdir(), split_count)
  local argv = { "/bin/sh", "-c", 'err=$1; shift; exec "$@" 2>"$err"', "sh", err, lc.bin }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return lc.spawn(argv, opts), function() return lc.read_file(err) end, err
end

function Proc:output() return lc.read_file(self.log) end

-- Waits until the output matches pattern; returns the captures (or the
-- match). Fails with the output so far.
function Proc:wait_for(pattern, timeout)
  local result
  lc.wait_until(function()
    local out = self:output()
    local caps = { out:match(pattern) }
    if #caps > 0 then result = caps return true end
    if self.exited and not out:match(pattern) then
      error(("process exited (code %s, signal %s) before printing %q; output:\n%s")
            :format(tostring(self.code), tostring(self.signal), pattern, out), 0)
    end
    self:poll()
    return false
  end, timeout or 5000, function()
    return ("%q in the output of %s; output:\n%s"):format(pattern,
      table.concat(self.argv, " "), self:output())
  end)
  return unpack(result)
end

-- Counts the matches of pattern in the output.
function Proc:count(pattern)
  local n = 0
  for _ in self:output():gmatch(pattern) do n = n + 1 end
  return n
end

-- Reaps the process if it has exited; returns true then.
function Proc:poll()
  if self.exited then return true end
  local status = ffi.new("int[1]")
  local r = C.waitpid(self.pid, status, WNOHANG)
  if r == self.pid then
    local s = status[0]
    self.exited = true
    if bit.band(s, 0x7f) == 0 then
      self.code = bit.rshift(bit.band(s, 0xff00), 8)
    else
      self.signal = SIGNAL_NAMES[bit.band(s, 0x7f)] or bit.band(s, 0x7f)
    end
    return true
  end
  return false
end

-- Waits for the exit; returns code, signal.
function Proc:wait_exit(timeout)
  lc.wait_until(function() return self:poll() end, timeout or 5000, function()
    return "exit of " .. table.concat(self.argv, " ") .. "; output:\n" .. self:output()
  end)
  return self.code, self.signal
end

function Proc:kill(signal)
  if self.exited then return false end
  return C.kill(self.pid, SIGNALS[signal or "SIGTERM"] or signal) == 0
end

-- Is a process (any pid) alive? Zombies of ours count as gone.
function lc.alive(pid)
  if C.kill(pid, 0) ~= 0 then return false end
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local stat = f:read("*l") or ""
  f:close()
  return not stat:match("^%d+ %b() Z")
end

function lc.kill(pid, signal)
  return C.kill(pid, SIGNALS[signal or "SIGTERM"] or signal) == 0
end

-- Kills every process group started, and reaps the leaders.
function lc.cleanup()
  for _, p in ipairs(running) do
    if not p.exited then
      C.kill(-p.pid, 9)
      C.kill(p.pid, 9)
      pcall(function() p:wait_exit(2000) end)
    else
      C.kill(-p.pid, 9) -- leftovers of an exited master, if any
    end
  end
  running = {}
end

-- Child pids of pid (from /proc).
function lc.children(pid)
  local kids = {}
  local f = io.open("/proc/" .. pid .. "/task/" .. pid .. "/children")
  if f then
    for k in (f:read("*a") or ""):gmatch("%d+") do kids[#kids + 1] = tonumber(k) end
    f:close()
  end
  return kids
end

-- Sockets -----------------------------------------------------------------------------

local Conn = {}
Conn.__index = Conn

local function errno_string()
  return ffi.string(C.strerror(ffi.errno()))
end

-- Connects to host:port (default 127.0.0.1); nil, error when refused.
function lc.connect(port, host)
  host = host or "127.0.0.1"
  local v6 = host:find(":", 1, true) ~= nil
  local fd = C.socket(v6 and AF_INET6 or AF_INET, SOCK_STREAM, 0)
  if fd < 0 then return nil, errno_string() end
  local addr, len
  if v6 then
    addr = ffi.new("struct sockaddr_in6")
    addr.sin6_family = AF_INET6
    addr.sin6_port = C.htons(port)
    C.inet_pton(AF_INET6, host, addr.addr)
    len = ffi.sizeof(addr)
  else
    addr = ffi.new("struct sockaddr_in")
    addr.sin_family = AF_INET
    addr.sin_port = C.htons(port)
    local a = ffi.new("uint32_t[1]")
    C.inet_pton(AF_INET, host, a)
    addr.sin_addr = a[0]
    len = ffi.sizeof(addr)
  end
  if C.connect(fd, addr, len) ~= 0 then
    local err = errno_string()
    C.close(fd)
    return nil, err
  end
  return setmetatable({ fd = fd, buf = "" }, Conn)
end

function Conn:send(data)
  local off = 0
  while off < #data do
    local n = C.write(self.fd, ffi.cast("const char *", data) + off, #data - off)
    if n < 0 then return nil, errno_string() end
    off = off + tonumber(n)
  end
  return true
end

-- Reads what arrives within timeout ms: data, or nil and "timeout"/"closed".
function Conn:recv(timeout)
  local pfd = ffi.new("struct pollfd[1]")
  pfd[0].fd = self.fd
  pfd[0].events = POLLIN
  local r = C.poll(pfd, 1, timeout or 5000)
  if r == 0 then return nil, "timeout" end
  local buf = ffi.new("char[65536]")
  local n = C.read(self.fd, buf, 65536)
  if n < 0 then return nil, errno_string() end
  if n == 0 then return nil, "closed" end
  return ffi.string(buf, n)
end

-- Reads until the peer closes (or timeout): all bytes, and why it stopped.
function Conn:read_all(timeout)
  local deadline = lc.now() + (timeout or 5000)
  local parts = { self.buf }
  self.buf = ""
  while true do
    local left = deadline - lc.now()
    if left <= 0 then return table.concat(parts), "timeout" end
    local data, err = self:recv(left)
    if not data then return table.concat(parts), err end
    parts[#parts + 1] = data
  end
end

-- Whether the peer closed the connection within timeout ms.
function Conn:closed_within(timeout)
  local _, why = self:read_all(timeout)
  return why == "closed" or why == "Connection reset by peer"
end

local function parse_head(head)
  local status_line, rest = head:match("^([^\r\n]*)\r\n(.*)$")
  status_line = status_line or head
  local version, status, reason = status_line:match("^HTTP/(%d%.%d) (%d%d%d) ?(.*)$")
  local headers = {}
  for name, value in (rest or ""):gmatch("([^:\r\n]+):%s*([^\r\n]*)\r\n") do
    local k = name:lower()
    headers[k] = headers[k] and (headers[k] .. ", " .. value) or value
  end
  return { version = version, status = tonumber(status), reason = reason, headers = headers }
end

-- Reads one HTTP response (Content-Length, chunked, or until close);
-- nil, why when it does not come.
function Conn:read_response(timeout, head_request)
  local deadline = lc.now() + (timeout or 5000)
  local function fill()
    local left = deadline - lc.now()
    if left <= 0 then return nil, "timeout" end
    local data, err = self:recv(left)
    if not data then return nil, err end
    self.buf = self.buf .. data
    return true
  end
  local head_end
  repeat
    head_end = self.buf:find("\r\n\r\n", 1, true)
    if not head_end then
      local ok, err = fill()
      if not ok then return nil, err, self.buf end
    end
  until head_end
  local res = parse_head(self.buf:sub(1, head_end + 1))
  res.raw_head = self.buf:sub(1, head_end + 3)
  self.buf = self.buf:sub(head_end + 4)
  if res.status and res.status < 200 then
    return res
  end
  local len = tonumber(res.headers["content-length"])
  if head_request or res.status == 204 or res.status == 304 then
    res.body = ""
  elseif res.headers["transfer-encoding"] == "chunked" then
    local body = {}
    while true do
      local line_end = self.buf:find("\r\n", 1, true)
      while not line_end do
        local ok, err = fill()
        if not ok then return nil, err end
        line_end = self.buf:find("\r\n", 1, true)
      end
      local size = tonumber(self.buf:sub(1, line_end - 1):match("^%x+"), 16)
      if not size then return nil, "bad chunk size" end
      while #self.buf < line_end + 1 + size + 2 do
        local ok, err = fill()
        if not ok then return nil, err end
      end
      body[#body + 1] = self.buf:sub(line_end + 2, line_end + 1 + size)
      self.buf = self.buf:sub(line_end + size + 4)
      if size == 0 then break end
    end
    res.body = table.concat(body)
    res.chunks = #body - 1
  elseif len then
    while #self.buf < len do
      local ok, err = fill()
      if not ok then return nil, err end
    end
    res.body = self.buf:sub(1, len)
    self.buf = self.buf:sub(len + 1)
  else
    local rest = self:read_all(deadline - lc.now())
    res.body = rest
  end
  return res
end

-- Half-closes (no more requests from us).
function Conn:shutdown() C.shutdown(self.fd, 1) end

-- Closes with a reset rather than a FIN.
function Conn:reset()
  local l = ffi.new("struct linger", 1, 0)
  C.setsockopt(self.fd, SOL_SOCKET, SO_LINGER, l, ffi.sizeof(l))
  self:close()
end

function Conn:close()
  if self.fd >= 0 then
    C.close(self.fd)
    self.fd = -1
  end
end

-- One request on a new connection: lc.http(port, "GET", "/path"[, {headers=, body=}])
-- -> response table, or nil, why.
function lc.http(port, method, path, opts)
  opts = opts or {}
  local conn, err = lc.connect(port, opts.host)
  if not conn then return nil, err end
  local lines = { ("%s %s HTTP/1.1"):format(method, path), "Host: 127.0.0.1" }
  for k, v in pairs(opts.headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  if opts.body then lines[#lines + 1] = "Content-Length: " .. #opts.body end
  if not opts.keep_alive then lines[#lines + 1] = "Connection: close" end
  conn:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (opts.body or ""))
  local res, why = conn:read_response(opts.timeout or 5000, method == "HEAD")
  conn:close()
  return res, why
end

-- Waits for "PORT <n>" in a process's output (the apps print it once they
-- listen on port 0) and returns n.
function Proc:port(timeout)
  return tonumber((self:wait_for("PORT (%d+)", timeout)))
end

-- Upstreams ---------------------------------------------------------------------------

-- Starts spec/helpers/upstream.py (an HTTP/1.1 server in Python, with
-- routes that misbehave on purpose); returns the process and its port.
function lc.upstream()
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
  local p = lc.spawn({ "python3", here .. "/upstream.py" })
  return p, p:port(10000)
end

-- GET /stats of an upstream: connections and requests it saw so far.
function lc.upstream_stats(port)
  local res = assert(lc.http(port, "GET", "/stats"))
  local c, r = res.body:match('"connections": (%d+), "requests": (%d+)')
  return tonumber(c), tonumber(r)
end

-- Load --------------------------------------------------------------------------------

local Load = {}
Load.__index = Load

-- Starts wrk against port (opts: seconds, connections, path, threads).
-- load:result() waits for it and returns {requests=, errors={connect=,
-- read=, write=, timeout=}, non2xx=, failed=} where failed counts every
-- request that did not get a 2xx/3xx answer on a connection we had.
function lc.load(port, opts)
  opts = opts or {}
  local argv = { "wrk", "-t" .. (opts.threads or 1), "-c" .. (opts.connections or 16),
                 "-d" .. (opts.seconds or 3) .. "s", "--timeout", (opts.timeout or 5) .. "s",
                 "http://127.0.0.1:" .. port .. (opts.path or "/") }
  local p = lc.spawn(argv)
  return setmetatable({ proc = p, seconds = opts.seconds or 3 }, Load)
end

function Load:result()
  self.proc:wait_exit((self.seconds + 15) * 1000)
  local out = self.proc:output()
  local r = {
    output = out,
    requests = tonumber(out:match("(%d+) requests in")),
    errors = { connect = 0, read = 0, write = 0, timeout = 0 },
    non2xx = tonumber(out:match("Non%-2xx or 3xx responses: (%d+)")) or 0,
  }
  local c, rd, w, t = out:match("Socket errors: connect (%d+), read (%d+), write (%d+), timeout (%d+)")
  if c then
    r.errors = { connect = tonumber(c), read = tonumber(rd), write = tonumber(w), timeout = tonumber(t) }
  end
  assert(r.requests, "wrk printed no result:\n" .. out)
  r.failed = r.errors.read + r.errors.write + r.errors.timeout + r.non2xx
  return r
end

-- Starts n exact-counting clients (load_client.lua); the returned
-- function waits for them and sums {ok=, lost=, refused=, output=}.
function lc.clients(port, n, seconds, path)
  local procs = {}
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
  for i = 1, n do
    procs[i] = lc.spawn({ "luajit", here .. "/load_client.lua", tostring(port),
                          tostring(seconds), path or "/" },
                        { env = { LUA_PATH = here .. "/?.lua;;" } })
  end
  return function()
    local sum = { ok = 0, lost = 0, refused = 0, output = "" }
    for _, p in ipairs(procs) do
      p:wait_exit((seconds + 20) * 1000)
      local out = p:output()
      local ok, lost, refused = out:match("RESULT ok (%d+) lost (%d+) refused (%d+)")
      assert(ok, "a client printed no result:\n" .. out)
      sum.ok = sum.ok + ok
      sum.lost = sum.lost + lost
      sum.refused = sum.refused + refused
      sum.output = sum.output .. out
    end
    return sum
  end
end

return lc
