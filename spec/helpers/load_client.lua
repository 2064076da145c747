-- A client that counts exactly: keep-alive requests in a loop until the
-- time is up or the server refuses a new connection; prints
--   RESULT ok <n> lost <n> refused <n>
-- where lost is a request written on an accepted connection that got no
-- answer. Run: luajit load_client.lua PORT SECONDS [PATH]
local lc = require("lc")

local port, seconds, path = tonumber(arg[1]), tonumber(arg[2]), arg[3] or "/"
local ok, lost, refused = 0, 0, 0
local deadline = lc.now() + seconds * 1000
local conn

while lc.now() < deadline do
  if not conn then
    conn = lc.connect(port)
    if not conn then
      refused = refused + 1
      break
    end
  end
  local res, why
  if conn:send("GET " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") then
    res, why = conn:read_response(10000)
  else
    why = "write failed"
  end
  if res and res.status == 200 then
    ok = ok + 1
    if (res.headers.connection or ""):lower() == "close" then
      conn:close()
      conn = nil
    end
  else
    lost = lost + 1
    print("LOST " .. tostring(why or (res and res.status)))
    conn:close()
    conn = nil
  end
end
if conn then conn:close() end
print(("RESULT ok %d lost %d refused %d"):format(ok, lost, refused))
