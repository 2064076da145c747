-- querystring (parse, stringify, escape, unescape), end to end: scripts
-- parse and print; the expectations are what Node's querystring module
-- gives for the same input, but for stringify's key order, which is
-- sorted here (Lua tables have no order of their own).
local lc = require("lc")

local eval = lc.eval

describe("querystring.parse", function()
  after_each(lc.cleanup)

  -- Parses each string in the app with the given extra arguments (Lua
  -- source); returns the tables.
  local function parse_all(list, args)
    local src = { "R.list = {}" }
    for i, s in ipairs(list) do
      src[#src + 1] = ("R.list[%d] = querystring.parse(%q%s)"):format(i, s, args or "")
    end
    return eval(table.concat(src, "\n")).list
  end

  it("parses Node's documented example, repeated keys as a list", function()
    local list = parse_all({ "foo=bar&abc=xyz&abc=123", "x=1&x=2&x=3&y=0" })
    assert.are.same({ foo = "bar", abc = { "xyz", "123" } }, list[1])
    assert.are.same({ x = { "1", "2", "3" }, y = "0" }, list[2])
  end)

  it("reads '+' as a space and decodes escapes in keys and values", function()
    local list = parse_all({ "a+b=c+d", "q=caf%C3%A9%20au%20lait", "%2B=%2B", "k%3D1=v%261" })
    assert.are.same({ ["a b"] = "c d" }, list[1])
    assert.are.same({ q = "caf\195\169 au lait" }, list[2])
    assert.are.same({ ["+"] = "+" }, list[3])
    assert.are.same({ ["k=1"] = "v&1" }, list[4])
  end)

  it("keeps malformed % escapes as they are, as Node", function()
    local list = parse_all({ "a=%zz&b=%4&c=100%", "a=%41%42%4", "%=%%" })
    assert.are.same({ a = "%zz", b = "%4", c = "100%" }, list[1])
    assert.are.same({ a = "AB%4" }, list[2])
    assert.are.same({ ["%"] = "%%" }, list[3])
  end)

  it("handles empty pairs, missing values and extra '=' as Node", function()
    local list = parse_all({ "", "&&", "a&&b", "a", "=x", "=", "a=1=2", "a=1&", "&a=1", "a=&a=" })
    assert.are.same({}, list[1])
    assert.are.same({}, list[2])
    assert.are.same({ a = "", b = "" }, list[3])
    assert.are.same({ a = "" }, list[4])
    assert.are.same({ [""] = "x" }, list[5])
    assert.are.same({ [""] = "" }, list[6])
    assert.are.same({ a = "1=2" }, list[7])
    assert.are.same({ a = "1" }, list[8])
    assert.are.same({ a = "1" }, list[9])
    assert.are.same({ a = { "", "" } }, list[10])
  end)

  it("takes other separators, several characters long too", function()
    local r = eval([[
      R.semi = querystring.parse("a:1;b:2;a:3", ";", ":")
      R.long = querystring.parse("a==1||b==2||c", "||", "==")
      R.default_on_empty = querystring.parse("a=1&b=2", "", "")
    ]])
    assert.are.same({ a = { "1", "3" }, b = "2" }, r.semi)
    assert.are.same({ a = "1", b = "2", c = "" }, r.long)
    assert.are.same({ a = "1", b = "2" }, r.default_on_empty)
  end)

  it("reads at most maxKeys pairs: 1000 by default, 0 for no limit", function()
    local r = eval([[
      local parts = {}
      for i = 1, 1500 do parts[i] = "k" .. i .. "=" .. i end
      local qs = table.concat(parts, "&")
      local function count(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end
      R.default = count(querystring.parse(qs))
      R.unlimited = count(querystring.parse(qs, nil, nil, { maxKeys = 0 }))
      R.two = querystring.parse("a=1&b=2&c=3", nil, nil, { maxKeys = 2 })
      -- Empty pairs count, as in Node.
      R.two_empty = querystring.parse("a=1&&b=2", nil, nil, { maxKeys = 2 })
      R.last = querystring.parse(qs).k1000
    ]])
    assert.are.equal(1000, r.default)
    assert.are.equal(1500, r.unlimited)
    assert.are.same({ a = "1", b = "2" }, r.two)
    assert.are.same({ a = "1" }, r.two_empty)
    assert.are.equal("1000", r.last)
  end)

  it("uses a custom decodeURIComponent, falling back to unescape when it fails", function()
    local r = eval([[
      R.custom = querystring.parse("a=x+y&b=z", nil, nil,
        { decodeURIComponent = function(s) return "<" .. s .. ">" end })
      R.failing = querystring.parse("a=%41+b", nil, nil,
        { decodeURIComponent = function() error("no") end })
    ]])
    assert.are.same({ ["<a>"] = "<x%20y>", ["<b>"] = "<z>" }, r.custom)
    assert.are.same({ a = "A b" }, r.failing)
  end)

  it("returns an empty table for what is not a string, as Node", function()
    local r = eval([[
      R.n = querystring.parse(nil)
      R.t = querystring.parse({})
      R.same = querystring == require("querystring")
      R.aliases = querystring.decode == querystring.parse and querystring.encode == querystring.stringify
    ]])
    assert.are.same({}, r.n)
    assert.are.same({}, r.t)
    assert.is_true(r.same)
    assert.is_true(r.aliases)
  end)
end)

describe("querystring.stringify", function()
  after_each(lc.cleanup)

  it("writes Node's documented examples with the keys sorted", function()
    local r = eval([[
      R[1] = querystring.stringify({ foo = "bar", baz = { "qux", "quux" }, corge = "" })
      R[2] = querystring.stringify({ foo = "bar", baz = "qux" }, ";", ":")
      R[3] = querystring.stringify({ w = "\228\184\173\230\150\135", foo = "bar" })
    ]])
    assert.are.same({
      "baz=qux&baz=quux&corge=&foo=bar",
      "baz:qux;foo:bar",
      "foo=bar&w=%E4%B8%AD%E6%96%87",
    }, r)
  end)

  it("writes numbers as JavaScript does, booleans by name, and nothing for other values", function()
    local r = eval([[
      R.out = querystring.stringify({
        int = 42, neg = -7, float = 1.5, third = 1 / 3, big = 1e21, huge_int = 2^53,
        small = 1e-7, tiny = 0.000001, zero = -0.0, yes = true, no = false,
        nan = 0 / 0, inf = math.huge, fn = print, obj = { x = 1 }, null = cjson.null,
        list = { 1, "two", true }, empty = {},
      })
    ]])
    assert.are.equal(table.concat({
      "big=1e%2B21", "float=1.5", "fn=", "huge_int=9007199254740992", "inf=", "int=42",
      "list=1", "list=two", "list=true", "nan=", "neg=-7", "no=false", "null=", "obj=",
      "small=1e-7", "third=0.3333333333333333", "tiny=0.000001", "yes=true", "zero=0",
    }, "&"), r.out)
  end)

  it("escapes keys and values, and round-trips through parse", function()
    local r = eval([[
      local t = { ["a b"] = "c&d=e", ["\226\152\131"] = { "caf\195\169", "x+y", "100%" }, k = "" }
      R.out = querystring.stringify(t)
      R.back = querystring.parse(R.out)
      R.number_keys = querystring.stringify({ [1] = "a", [2.5] = "b" })
      R.custom = querystring.stringify({ a = "x y" }, nil, nil,
        { encodeURIComponent = function(s) return s:upper() end })
      R.not_table = querystring.stringify("a=1")
    ]])
    assert.are.equal("a%20b=c%26d%3De&k=&%E2%98%83=caf%C3%A9&%E2%98%83=x%2By&%E2%98%83=100%25", r.out)
    assert.are.same({ ["a b"] = "c&d=e", ["\226\152\131"] = { "caf\195\169", "x+y", "100%" }, k = "" }, r.back)
    assert.are.equal("1=a&2.5=b", r.number_keys)
    assert.are.equal("A=X Y", r.custom)
    assert.are.equal("", r.not_table)
  end)

  it("refuses a key that cannot be a name", function()
    local r = eval([[
      local ok, err = pcall(querystring.stringify, { [{}] = 1 })
      R.ok, R.err = ok, tostring(err)
    ]])
    assert.is_false(r.ok)
    assert.matches("a key is a table", r.err)
  end)
end)

describe("querystring.escape and unescape", function()
  after_each(lc.cleanup)

  it("escape as encodeURIComponent does, and unescape undoes it", function()
    local r = eval([[
      local ascii = {}
      for b = 32, 126 do ascii[#ascii + 1] = string.char(b) end
      ascii = table.concat(ascii)
      R.ascii = querystring.escape(ascii)
      R.ascii_back = querystring.unescape(R.ascii) == ascii
      R.unicode = querystring.escape("caf\195\169 \226\152\131 \240\159\152\128")
      R.unicode_back = querystring.unescape(R.unicode)
      local all = {}
      for b = 0, 255 do all[#all + 1] = string.char(b) end
      all = table.concat(all)
      R.bytes_back = querystring.unescape(querystring.escape(all)) == all
      R.number = querystring.escape(12.5)
      R.boolean = querystring.escape(true)
    ]])
    assert.are.equal("%20!%22%23%24%25%26'()*%2B%2C-.%2F0123456789%3A%3B%3C%3D%3E%3F%40" ..
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ%5B%5C%5D%5E_%60abcdefghijklmnopqrstuvwxyz%7B%7C%7D~",
                     r.ascii)
    assert.is_true(r.ascii_back)
    assert.are.equal("caf%C3%A9%20%E2%98%83%20%F0%9F%98%80", r.unicode)
    assert.are.equal("caf\195\169 \226\152\131 \240\159\152\128", r.unicode_back)
    assert.is_true(r.bytes_back)
    assert.are.equal("12.5", r.number)
    assert.are.equal("true", r.boolean)
  end)

  it("unescape leaves '+' and malformed escapes alone, decodes either case", function()
    local r = eval([[
      R.out = querystring.unescape("a+b%20c%zz%4%e2%82%ac%E2%82%AC%")
      local ok, err = pcall(querystring.escape, nil)
      R.escape_nil = tostring(err)
      ok, err = pcall(querystring.unescape, 5)
      R.unescape_number = tostring(err)
    ]])
    assert.are.equal("a+b c%zz%4\226\130\172\226\130\172%", r.out)
    assert.matches("bad argument #1 to 'escape' %(string expected, got nil%)", r.escape_nil)
    assert.matches("bad argument #1 to 'unescape' %(string expected, got number%)", r.unescape_number)
  end)
end)
