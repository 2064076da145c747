-- url (parse, format, resolve), end to end: scripts parse and print, the
-- tests compare with what Node's legacy url module gives for the same
-- input (its documented examples and edge cases), and a server parses the
-- req.url of real requests.
local lc = require("lc")

local eval = lc.eval

local CATCH = [[
  local function catch(fn)
    local ok, err = pcall(fn)
    if ok then return "no error" end
    return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
  end
]]

-- Parses each of the strings in the app; returns the parsed tables.
local function parse_all(list, parse_query, slashes_denote_host)
  local src = { "R.list = {}" }
  for i, s in ipairs(list) do
    src[#src + 1] = ("R.list[%d] = url.parse(%q, %s, %s)"):format(i, s,
      tostring(parse_query or false), tostring(slashes_denote_host or false))
  end
  return eval(table.concat(src, "\n")).list
end

describe("url.parse", function()
  after_each(lc.cleanup)

  it("splits Node's documented example into every part", function()
    local u = parse_all({ "https://user:pass@sub.example.com:8080/p/a/t/h?query=string#hash" })[1]
    assert.are.same({
      protocol = "https:", slashes = true, auth = "user:pass",
      host = "sub.example.com:8080", port = "8080", hostname = "sub.example.com",
      hash = "#hash", search = "?query=string", query = "query=string",
      pathname = "/p/a/t/h", path = "/p/a/t/h?query=string",
      href = "https://user:pass@sub.example.com:8080/p/a/t/h?query=string#hash",
    }, u)
  end)

  it("parses a request's url: a path, a query, a fragment, nothing else", function()
    local list = parse_all({ "/a?b=c#d", "/", "/search?q=1", "//double/slash", "/a'b|c" })
    assert.are.same({ pathname = "/a", search = "?b=c", query = "b=c", hash = "#d",
                      path = "/a?b=c", href = "/a?b=c#d" }, list[1])
    assert.are.same({ pathname = "/", path = "/", href = "/" }, list[2])
    assert.are.same({ pathname = "/search", search = "?q=1", query = "q=1",
                      path = "/search?q=1", href = "/search?q=1" }, list[3])
    -- Without slashesDenoteHost, "//x" is a path (as Node).
    assert.are.same({ pathname = "//double/slash", path = "//double/slash",
                      href = "//double/slash" }, list[4])
    -- A plain path is taken as it is, not escaped (Node's fast path).
    assert.are.equal("/a'b|c", list[5].pathname)
  end)

  it("parses the query into a table when asked, with repeated keys as lists", function()
    local list = parse_all({ "/p?x=1&x=2&y=&z=a+b%20c&x=3", "/p", "/p?", "http://a.com/?#f" }, true)
    assert.are.same({ x = { "1", "2", "3" }, y = "", z = "a b c" }, list[1].query)
    assert.are.equal("?x=1&x=2&y=&z=a+b%20c&x=3", list[1].search)
    -- No query at all: an empty table and no search, as Node.
    assert.are.same({}, list[2].query)
    assert.is_nil(list[2].search)
    assert.are.same({}, list[3].query)
    assert.are.equal("?", list[3].search)
    assert.are.same({}, list[4].query)
    assert.are.equal("#f", list[4].hash)
  end)

  it("keeps an IPv6 host's brackets in host and drops them in hostname", function()
    local list = parse_all({ "http://[::1]:8080/x", "http://[2001:DB8::7]", "https://[::ffff:127.0.0.1]:443?a#b" })
    assert.are.same({ "[::1]:8080", "::1", "8080", "/x", "http://[::1]:8080/x" },
      { list[1].host, list[1].hostname, list[1].port, list[1].pathname, list[1].href })
    assert.are.same({ "[2001:db8::7]", "2001:db8::7", "/", "http://[2001:db8::7]/" },
      { list[2].host, list[2].hostname, list[2].pathname, list[2].href })
    assert.is_nil(list[2].port)
    assert.are.same({ "::ffff:127.0.0.1", "443", "/", "?a", "#b" },
      { list[3].hostname, list[3].port, list[3].pathname, list[3].search, list[3].hash })
  end)

  it("decodes the userinfo and puts it back escaped in href", function()
    local list = parse_all({ "http://us%20er:p%40ss@a.com/x", "http://a@b@c/d", "http://a@b?@c",
                             "http://user@a.com", "//user@host/path" })
    assert.are.same({ "us er:p@ss", "a.com", "http://us%20er:p%40ss@a.com/x" },
      { list[1].auth, list[1].host, list[1].href })
    assert.are.same({ "a@b", "c", "http://a%40b@c/d" }, { list[2].auth, list[2].host, list[2].href })
    assert.are.same({ "a", "b", "?@c" }, { list[3].auth, list[3].host, list[3].search })
    assert.are.same({ "user", "a.com", "/" }, { list[4].auth, list[4].host, list[4].pathname })
    -- "//user@host" is always a host, as in Node.
    assert.are.same({ true, "user", "host", "/path" },
      { list[5].slashes, list[5].auth, list[5].host, list[5].pathname })
  end)

  it("fills in what a URL leaves out, as Node does", function()
    local list = parse_all({ "http://a.com", "http://a.com:/x", "HTTP://A.Com:8080/Foo", "file:///etc/hosts",
                             "mailto:x@y.com", "a/b", "?x=1", "#h", "", "  http://a.com/  " })
    assert.are.same({ "/", "/", "http://a.com/" }, { list[1].pathname, list[1].path, list[1].href })
    assert.is_nil(list[1].port)
    assert.are.same({ "a.com", "/x", "http://a.com/x" }, { list[2].host, list[2].pathname, list[2].href })
    assert.is_nil(list[2].port)
    assert.are.same({ "http:", "a.com:8080", "a.com", "/Foo" },
      { list[3].protocol, list[3].host, list[3].hostname, list[3].pathname })
    assert.are.same({ "file:", "", "/etc/hosts", "file:///etc/hosts" },
      { list[4].protocol, list[4].host, list[4].pathname, list[4].href })
    assert.are.same({ "mailto:", "x", "y.com", "mailto:x@y.com" },
      { list[5].protocol, list[5].auth, list[5].host, list[5].href })
    assert.is_nil(list[5].slashes)
    assert.is_nil(list[5].pathname)
    assert.are.same({ pathname = "a/b", path = "a/b", href = "a/b" }, list[6])
    assert.are.same({ search = "?x=1", query = "x=1", path = "?x=1", href = "?x=1" }, list[7])
    assert.are.same({ hash = "#h", href = "#h" }, list[8])
    assert.are.same({ href = "" }, list[9])
    assert.are.equal("http://a.com/", list[10].href)
  end)

  it("turns backslashes into slashes and escapes what may not appear in a URL", function()
    local list = parse_all({ "http://a.com\\b\\c?x\\y", "http://x.com/a b", "http://x.com/a'b<c>\"d\"{e}|^`",
                             "http://a b.com/", "http://a.com:80x/y", "http://a.com/caf\195\169?q=\195\169" })
    assert.are.same({ "/b/c", "?x%5Cy" }, { list[1].pathname, list[1].search })
    assert.are.equal("/a%20b", list[2].pathname)
    assert.are.equal("/a%27b%3Cc%3E%22d%22%7Be%7D%7C%5E%60", list[3].pathname)
    -- A space ends the host; the rest becomes the path (as Node).
    assert.are.same({ "a", "%20b.com/" }, { list[4].host, list[4].pathname })
    assert.are.same({ "a.com", "/:80x/y" }, { list[5].host, list[5].pathname })
    -- Non-ASCII bytes are kept as they are.
    assert.are.same({ "/caf\195\169", "?q=\195\169" }, { list[6].pathname, list[6].search })
  end)

  it("takes //host as a host with slashesDenoteHost", function()
    local u = parse_all({ "//foo/bar" }, false, true)[1]
    assert.are.same({ slashes = true, host = "foo", hostname = "foo", pathname = "/bar",
                      path = "/bar", href = "//foo/bar" }, u)
  end)

  it("raises a clear error for a non-string and an invalid IPv6 host", function()
    local r = eval(CATCH .. [[
      R.nil_arg = catch(function() local u = url.parse() return u end)
      R.number = catch(function() local u = url.parse(42) return u end)
      R.ipv6 = catch(function() local u = url.parse("http://[::1%]/") return u end)
      R.forbidden = catch(function() local u = url.parse("http://a[b]/") return u end)
    ]])
    assert.are.equal("bad argument #1 to 'parse' (string expected, got nil)", r.nil_arg)
    assert.are.equal("bad argument #1 to 'parse' (string expected, got number)", r.number)
    assert.are.equal("invalid URL: http://[::1%]/", r.ipv6)
    assert.are.equal("invalid URL: http://a[b]/", r.forbidden)
  end)
end)

describe("url.format", function()
  after_each(lc.cleanup)

  it("formats Node's documented example and the parts Node's rules pick", function()
    local r = eval(CATCH .. [[
      R.out = {}
      R.out[1] = url.format({ protocol = "https", hostname = "example.com", pathname = "/some/path",
                          query = { page = 1, format = "json" } })
      R.out[2] = url.format({ protocol = "http:", host = "a.com:80", pathname = "x", search = "q=1", hash = "h" })
      R.out[3] = url.format({ hostname = "::1", port = 8080, pathname = "/" })
      R.out[4] = url.format({ protocol = "mailto", auth = "me", hostname = "x.org" })
      R.out[5] = url.format({ protocol = "http", auth = "us er:p@ss", hostname = "a.com", pathname = "/a?b#c" })
      R.out[6] = url.format({ protocol = "file", pathname = "/etc/hosts" })
      R.out[7] = url.format({ pathname = "/p", query = {} })
      R.out[8] = url.format({ pathname = "/p", search = "?a=1#x" })
      R.out[9] = url.format({ protocol = "x", slashes = true, host = "h", pathname = "p" })
      R.out[10] = url.format("HTTP://A.com:80/a b")
      R.bad = catch(function() return url.format(42) end)
    ]])
    assert.are.same({
      "https://example.com/some/path?format=json&page=1",
      "http://a.com:80/x?q=1#h",
      "[::1]:8080/",
      "mailto:me@x.org",
      "http://us%20er:p%40ss@a.com/a%3Fb%23c",
      "file:///etc/hosts",
      "/p",
      "/p?a=1%23x",
      "x://h/p",
      "http://a.com:80/a%20b",
    }, r.out)
    assert.are.equal("bad argument #1 to 'format' (table or string expected, got number)", r.bad)
  end)

  it("gives back what url.parse took apart", function()
    local r = eval([[
      R.same = {}
      for _, s in ipairs({ "https://user:pass@sub.example.com:8080/p/a/t/h?query=string#hash",
                           "http://[::1]:80/x?y#z", "/a?b=c#d", "mailto:x@y.com", "file:///tmp/x",
                           "//user@host/p", "ws://a.com/sock?x=%20" }) do
        local u = url.parse(s)
        R.same[#R.same + 1] = url.format(u) == s and u.href == s
      end
      -- A parsed query table is stringified again when search is dropped.
      local u = url.parse("http://a.com/p?b=2&a=1&a=3", true)
      u.search = nil
      R.requery = url.format(u)
    ]])
    assert.are.same({ true, true, true, true, true, true, true }, r.same)
    assert.are.equal("http://a.com/p?a=1&a=3&b=2", r.requery)
  end)
end)

describe("url.resolve", function()
  after_each(lc.cleanup)

  it("resolves Node's documented examples and RFC 3986's normal examples", function()
    local pairs_ = {
      { "/one/two/three", "four", "/one/two/four" },
      { "http://example.com/", "/one", "http://example.com/one" },
      { "http://example.com/one", "/two", "http://example.com/two" },
      { "http://a/b/c/d;p?q", "g:h", "g:h" },
      { "http://a/b/c/d;p?q", "g", "http://a/b/c/g" },
      { "http://a/b/c/d;p?q", "./g", "http://a/b/c/g" },
      { "http://a/b/c/d;p?q", "g/", "http://a/b/c/g/" },
      { "http://a/b/c/d;p?q", "/g", "http://a/g" },
      { "http://a/b/c/d;p?q", "//g", "http://g/" },
      { "http://a/b/c/d;p?q", "?y", "http://a/b/c/d;p?y" },
      { "http://a/b/c/d;p?q", "g?y", "http://a/b/c/g?y" },
      { "http://a/b/c/d;p?q", "#s", "http://a/b/c/d;p?q#s" },
      { "http://a/b/c/d;p?q", "g?y#s", "http://a/b/c/g?y#s" },
      { "http://a/b/c/d;p?q", ";x", "http://a/b/c/;x" },
      { "http://a/b/c/d;p?q", "", "http://a/b/c/d;p?q" },
      { "http://a/b/c/d;p?q", ".", "http://a/b/c/" },
      { "http://a/b/c/d;p?q", "..", "http://a/b/" },
      { "http://a/b/c/d;p?q", "../g", "http://a/b/g" },
      { "http://a/b/c/d;p?q", "../..", "http://a/" },
      { "http://a/b/c/d;p?q", "../../../g", "http://a/g" },
      { "http://a/b/c/d;p?q", "/./g", "http://a/g" },
      { "http://a/b/c/d;p?q", "g/../h", "http://a/b/c/h" },
      { "http://a/b/c/d;p?q", "http:g", "http://a/b/c/g" },
      { "http://example.com/a/b", "https://other.org/x?y#z", "https://other.org/x?y#z" },
      { "http://user:pw@example.com/a", "/b", "http://user:pw@example.com/b" },
      { "http://a.com", "?x=1", "http://a.com/?x=1" },
    }
    local src = { "R.got = {}" }
    for i, c in ipairs(pairs_) do
      src[#src + 1] = ("R.got[%d] = url.resolve(%q, %q)"):format(i, c[1], c[2])
    end
    local r = eval(table.concat(src, "\n"))
    for i, c in ipairs(pairs_) do
      assert.are.equal(c[3], r.got[i], ("url.resolve(%q, %q)"):format(c[1], c[2]))
    end
  end)
end)

describe("url in a server", function()
  after_each(lc.cleanup)

  it("parses req.url of real requests, the global url as require('url')", function()
    local p = lc.run([[
      local server = http.createServer(function(req, res)
        local u = url.parse(req.url, true)
        local tags = u.query.tag
        if type(tags) == "string" then tags = { tags } end
        res:finish(("path=%s q=%s tags=%s same=%s"):format(u.pathname, tostring(u.query.q),
          table.concat(tags or {}, "|"), tostring(require("url") == url)))
      end)
      server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
    ]])
    local port = p:port()
    local res = assert(lc.http(port, "GET", "/search?q=caf%C3%A9+au+lait&tag=a&tag=b%26c"))
    assert.are.equal("path=/search q=caf\195\169 au lait tags=a|b&c same=true", res.body)
    res = assert(lc.http(port, "GET", "/plain"))
    assert.are.equal("path=/plain q=nil tags= same=true", res.body)
    res = assert(lc.http(port, "GET", "/bad?q=%zz%4"))
    assert.are.equal("path=/bad q=%zz%4 tags= same=true", res.body)
  end)
end)
