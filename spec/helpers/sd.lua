-- sd: the service manager's side of the notify protocol and of socket
-- activation, for the specs: a datagram socket a master notifies (a path or
-- an abstract "@name"), and listening sockets to pass as LISTEN_FDS, the
-- way systemd does. Plain BSD sockets through the FFI.
local ffi = require("ffi")
local lc = require("lc")
local bit = require("bit")

ffi.cdef [[
struct lc_sockaddr_un { uint16_t sun_family; char sun_path[108]; };
int bind(int fd, const void *addr, unsigned int len);
int listen(int fd, int backlog);
long recv(int fd, void *buf, size_t n, int flags);
int getsockname(int fd, void *addr, unsigned int *len);
int unlink(const char *path);
int getpid(void);
]]

local C = ffi.C
local AF_UNIX, AF_INET, SOCK_STREAM, SOCK_DGRAM = 1, 2, 1, 2
local SOCK_CLOEXEC, SOCK_NONBLOCK = 0x80000, 0x800
local POLLIN = 1

local sd = {}

local Notify = {}
Notify.__index = Notify

-- A datagram socket at path (or "@name": an abstract address) collecting
-- what a master sends; :messages() returns them all so far, in order.
function sd.notify_socket(path)
  local fd = C.socket(AF_UNIX, bit.bor(SOCK_DGRAM, SOCK_CLOEXEC, SOCK_NONBLOCK), 0)
  assert(fd >= 0, "socket")
  local sa = ffi.new("struct lc_sockaddr_un")
  sa.sun_family = AF_UNIX
  ffi.copy(sa.sun_path, path, #path)
  local len = 2 + #path + 1
  if path:sub(1, 1) == "@" then
    sa.sun_path[0] = 0
    len = 2 + #path
  else
    C.unlink(path)
  end
  assert(C.bind(fd, sa, len) == 0, "bind " .. path .. ": " .. ffi.string(C.strerror(ffi.errno())))
  return setmetatable({ fd = fd, path = path, got = {} }, Notify)
end

function Notify:drain()
  local buf = ffi.new("char[4096]")
  while true do
    local n = C.recv(self.fd, buf, 4096, 0)
    if n <= 0 then break end
    self.got[#self.got + 1] = { at = lc.now(), text = ffi.string(buf, n) }
  end
  return self.got
end

-- Messages so far, as a list of strings.
function Notify:messages()
  local out = {}
  for i, m in ipairs(self:drain()) do out[i] = m.text end
  return out
end

-- Waits for a message matching pattern after index `after` (0: any);
-- returns its index and text.
function Notify:wait_for(pattern, timeout, after)
  local found, text
  lc.wait_until(function()
    for i, m in ipairs(self:drain()) do
      if i > (after or 0) and m.text:match(pattern) then
        found, text = i, m.text
        return true
      end
    end
  end, timeout or 10000, function()
    return ("%q on %s; got:\n%s"):format(pattern, self.path, table.concat(self:messages(), "\n--\n"))
  end)
  return found, text
end

function Notify:close()
  C.close(self.fd)
  if self.path:sub(1, 1) ~= "@" then C.unlink(self.path) end
end

-- A TCP socket listening on 127.0.0.1 (port 0: any free one), close-on-exec
-- (so only its copy at descriptor 3.. reaches a child); returns fd, port.
function sd.listen_socket(port)
  local fd = C.socket(AF_INET, bit.bor(SOCK_STREAM, SOCK_CLOEXEC), 0)
  assert(fd >= 0, "socket")
  local one = ffi.new("int[1]", 1)
  C.setsockopt(fd, 1, 2, one, 4) -- SO_REUSEADDR
  local sa = ffi.new("struct sockaddr_in")
  sa.sin_family = AF_INET
  sa.sin_port = C.htons(port or 0)
  local a = ffi.new("uint32_t[1]")
  C.inet_pton(AF_INET, "127.0.0.1", a)
  sa.sin_addr = a[0]
  assert(C.bind(fd, sa, ffi.sizeof(sa)) == 0, "bind: " .. ffi.string(C.strerror(ffi.errno())))
  assert(C.listen(fd, 128) == 0, "listen")
  local len = ffi.new("unsigned int[1]", ffi.sizeof(sa))
  C.getsockname(fd, sa, len)
  return fd, C.htons(sa.sin_port)
end

-- A free port on 127.0.0.1 (bound and released at once).
function sd.free_port()
  local fd, port = sd.listen_socket(0)
  C.close(fd)
  return port
end

function sd.close(fd) C.close(fd) end

-- The socket inode of descriptor fd of process pid ("socket:[N]" -> N).
function sd.socket_inode(pid, fd)
  local p = io.popen("readlink /proc/" .. pid .. "/fd/" .. fd .. " 2>/dev/null")
  local s = p:read("*a") or ""
  p:close()
  return s:match("socket:%[(%d+)%]")
end

-- Every socket inode process pid holds.
function sd.socket_inodes(pid)
  local p = io.popen("ls -l /proc/" .. pid .. "/fd 2>/dev/null")
  local s = p:read("*a") or ""
  p:close()
  local set = {}
  for inode in s:gmatch("socket:%[(%d+)%]") do set[inode] = true end
  return set
end

function sd.my_pid() return C.getpid() end

-- Starts `luacluster args...` with the sockets `fds` passed as systemd
-- does: descriptors 3.., LISTEN_FDS, and LISTEN_PID set to the pid the
-- program runs as (a shell sets it, then execs).
function sd.start_activated(args, fds, opts)
  opts = opts or {}
  local argv = { "/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh", lc.bin }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local env = opts.env or {}
  env.LISTEN_FDS = #fds
  opts.env = env
  opts.fds = fds
  return lc.spawn(argv, opts)
end

return sd
