-- crypto (hashes, HMACs, random values), base64 and hex, end to end: each
-- test runs a luacluster script that computes and prints, and checks what
-- it printed against published vectors (NIST for SHA, RFC 1321 for MD5,
-- RFC 4231 for HMAC, RFC 4648 for base64 and hex).
local lc = require("lc")

local eval = lc.eval

-- The error message of calling fn, from inside the app, without the
-- "app.lua:12: " position Lua puts in front.
local CATCH = [[
  local function catch(fn)
    local ok, err = pcall(fn)
    if ok then return "no error" end
    return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
  end
]]

local MILLION_A = [[
  local function million_a(alg)
    local h, chunk = crypto.createHash(alg), ("a"):rep(1000)
    for _ = 1, 1000 do h:update(chunk) end
    return h:digest("hex")
  end
]]

describe("crypto.createHash", function()
  after_each(lc.cleanup)

  it("gives the NIST digests of SHA-1, SHA-256 and SHA-512", function()
    local r = eval(MILLION_A .. [[
      local msg448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
      for _, alg in ipairs({ "sha1", "sha256", "sha512" }) do
        R[alg] = {
          crypto.createHash(alg):update("abc"):digest("hex"),
          crypto.createHash(alg):update(msg448):digest("hex"),
          million_a(alg),
          crypto.createHash(alg):update(("a"):rep(1000000)):digest("hex"),
        }
      end
    ]])
    assert.are.same({
      "a9993e364706816aba3e25717850c26c9cd0d89d",
      "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
      "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
      "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
    }, r.sha1)
    assert.are.same({
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
    }, r.sha256)
    assert.are.same({
      "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a" ..
      "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
      "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c335" ..
      "96fd15c13b1b07f9aa1d3bea57789ca031ad85c7a71dd70354ec631238ca3445",
      "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb" ..
      "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b",
      "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb" ..
      "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b",
    }, r.sha512)
  end)

  it("gives the RFC 1321 digests of MD5", function()
    local r = eval([[
      for i, s in ipairs({ "", "a", "abc", "message digest", "abcdefghijklmnopqrstuvwxyz",
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                           ("1234567890"):rep(8) }) do
        R[i] = crypto.createHash("md5"):update(s):digest("hex")
      end
    ]])
    assert.are.same({
      "d41d8cd98f00b204e9800998ecf8427e", "0cc175b9c0f1b6a831c399e269772661",
      "900150983cd24fb0d6963f7d28e17f72", "f96b697d7cb7938d525a2f31aaf161d0",
      "c3fcd3d76192e4007dfb496cca67e13b", "d174ab98d277d9f5a5611c2c9f419d9f",
      "57edf4a22be3c955ac49da2e2107b67a",
    }, r)
  end)

  it("gives the digest as raw bytes, hex, base64 or base64url", function()
    local r = eval([[
      local hex = require("hex")
      local function d(enc) return crypto.createHash("sha256"):update("abc"):digest(enc) end
      R.raw_len = #d()
      R.raw = hex.encode(d())
      R.binary = hex.encode(d("binary"))
      R.latin1 = hex.encode(d("latin1"))
      R.hex = d("hex")
      R.HEX = d("HEX")
      R.base64 = d("base64")
      R.base64url = d("base64url")
      R.md5_base64url = crypto.createHash("md5"):update("a"):digest("base64url")
    ]])
    local hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert.are.equal(32, r.raw_len)
    assert.are.same({ hex, hex, hex, hex, hex }, { r.raw, r.binary, r.latin1, r.hex, r.HEX })
    assert.are.equal("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=", r.base64)
    assert.are.equal("ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0", r.base64url)
    assert.are.equal("DMF1ucDxtqgxw5niaXcmYQ", r.md5_base64url)
  end)

  it("chains update, takes any number of updates and decodes hex or base64 input", function()
    local r = eval([[
      local h = crypto.createHash("sha256")
      R.same_object = h:update("a") == h
      h:update("b"):update(""):update("c")
      R.pieces = h:digest("hex")
      R.hex_input = crypto.createHash("sha256"):update("616263", "hex"):digest("hex")
      R.base64_input = crypto.createHash("sha256"):update("YWJj", "base64"):digest("hex")
      R.utf8_input = crypto.createHash("sha256"):update("abc", "utf8"):digest("hex")
      R.nul_bytes = crypto.createHash("md5"):update("a\0b"):digest("hex")
      R.upper_name = crypto.createHash("SHA256"):update("abc"):digest("hex")
      R.alias = crypto.createHash("RSA-SHA256"):update("abc"):digest("hex")
      R.sha3 = crypto.createHash("sha3-256"):update("abc"):digest("hex")
    ]])
    local abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert.is_true(r.same_object)
    assert.are.same({ abc, abc, abc, abc, abc, abc },
      { r.pieces, r.hex_input, r.base64_input, r.utf8_input, r.upper_name, r.alias })
    assert.are.equal("70350f6027bce3713f6b76473084309b", r.nul_bytes)
    assert.are.equal("3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532", r.sha3)
  end)

  it("copies a hash in progress into an independent one", function()
    local r = eval([[
      local a = crypto.createHash("sha256"):update("a")
      local b = a:copy()
      R.a = a:update("bc"):digest("hex")
      R.b = b:update("xy"):digest("hex")
      R.axy = crypto.createHash("sha256"):update("axy"):digest("hex")
    ]])
    assert.are.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", r.a)
    assert.are.equal(r.axy, r.b)
  end)

  it("refuses a second digest and an update after digest, as Node", function()
    local r = eval(CATCH .. [[
      local h = crypto.createHash("sha1")
      h:update("x")
      R.first = h:digest("hex")
      R.again = catch(function() h:digest("hex") end)
      R.update = catch(function() h:update("y") end)
      R.copy = catch(function() h:copy() end)
      R.tostring = tostring(h)
    ]])
    assert.are.equal("11f6ad8ec52a2984abaafd7c3b516503785c2072", r.first)
    assert.are.equal("Digest already called", r.again)
    assert.are.equal("Digest already called", r.update)
    assert.are.equal("Digest already called", r.copy)
    assert.are.equal("Hash (SHA1), digested", r.tostring)
  end)

  it("names an unknown algorithm, a bad encoding and a wrong argument in its error", function()
    local r = eval(CATCH .. [[
      R.unknown = catch(function() local h = crypto.createHash("nope") return h end)
      R.legacy = catch(function() local h = crypto.createHash("md4") return h end)
      R.embedded_nul = catch(function() local h = crypto.createHash("sha1\0junk") return h end)
      R.number = catch(function() local h = crypto.createHash(256) return h end)
      R.missing = catch(function() local h = crypto.createHash() return h end)
      local h = crypto.createHash("sha256")
      R.update_number = catch(function() h:update(42) end)
      R.update_table = catch(function() h:update({}) end)
      R.update_bad_hex = catch(function() h:update("zz", "hex") end)
      R.input_encoding = catch(function() h:update("x", "ucs2") end)
      R.output_encoding = catch(function() h:digest("utf16") end)
      R.still_usable = h:update("abc"):digest("hex")
      R.self = catch(function() h.update("abc") end)
      local _, raw = pcall(function() local x = crypto.createHash("nope") return x end)
      R.raw = raw
    ]])
    assert.are.equal("bad argument #1 to 'createHash' (digest method not supported: 'nope')", r.unknown)
    assert.are.equal("bad argument #1 to 'createHash' (digest method not supported: 'md4')", r.legacy)
    assert.matches("bad argument #1 to 'createHash' %(digest method not supported", r.embedded_nul)
    assert.are.equal("bad argument #1 to 'createHash' (string expected, got number)", r.number)
    assert.are.equal("bad argument #1 to 'createHash' (string expected, got no value)", r.missing)
    assert.are.equal("bad argument #1 to 'update' (string expected, got number)", r.update_number)
    assert.are.equal("bad argument #1 to 'update' (string expected, got table)", r.update_table)
    assert.are.equal("bad argument #1 to 'update' (invalid hex character at position 1)", r.update_bad_hex)
    assert.are.equal("bad argument #2 to 'update' (unknown encoding 'ucs2')", r.input_encoding)
    assert.are.equal("bad argument #1 to 'digest' (unknown encoding 'utf16')", r.output_encoding)
    -- A refused digest() leaves the hash as it was.
    assert.are.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", r.still_usable)
    assert.matches("bad argument #1 to 'update' %(luacluster.crypto.Digest expected, got string%)", r.self)
    -- Errors point at the caller's line, as Lua's own do.
    assert.matches("app%.lua:%d+: bad argument #1 to 'createHash'", r.raw)
  end)

  it("frees the contexts of digested and abandoned hashes alike", function()
    -- Run under the sanitizers, a context freed twice or never fails this.
    local r = eval([[
      for i = 1, 20000 do
        local h = crypto.createHash(i % 2 == 0 and "sha256" or "md5"):update("x")
        local m = crypto.createHmac("sha1", "k"):update("x")
        if i % 5 == 0 then h:copy() end
        if i % 3 == 0 then h:digest() m:digest() end
      end
      collectgarbage("collect")
      collectgarbage("collect")
      R.done = true
    ]])
    assert.is_true(r.done)
  end)
end)

describe("crypto.createHmac", function()
  after_each(lc.cleanup)

  it("gives the RFC 4231 HMAC-SHA256 and HMAC-SHA512 of test cases 1-4, 6 and 7", function()
    local r = eval([[
      local hex = require("hex")
      local key4 = ""
      for i = 1, 25 do key4 = key4 .. string.char(i) end
      local cases = {
        { ("\11"):rep(20), "Hi There" },
        { "Jefe", "what do ya want for nothing?" },
        { ("\170"):rep(20), ("\221"):rep(50) },
        { key4, ("\205"):rep(50) },
        [6] = { ("\170"):rep(131), "Test Using Larger Than Block-Size Key - Hash Key First" },
        [7] = { ("\170"):rep(131), "This is a test using a larger than block-size key and a larger " ..
                "than block-size data. The key needs to be hashed before being used by the HMAC algorithm." },
      }
      for _, alg in ipairs({ "sha256", "sha512" }) do
        R[alg] = {}
        for n, c in pairs(cases) do
          R[alg][tostring(n)] = crypto.createHmac(alg, c[1]):update(c[2]):digest("hex")
        end
      end
      -- Fed in pieces, and raw: the same MAC.
      local h = crypto.createHmac("sha256", "Jefe")
      for piece in ("what do ya want for nothing?"):gmatch("..?.?") do h:update(piece) end
      R.pieces = hex.encode(h:digest())
    ]])
    assert.are.same({
      ["1"] = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      ["2"] = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      ["3"] = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
      ["4"] = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
      ["6"] = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
      ["7"] = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    }, r.sha256)
    assert.are.same({
      ["1"] = "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde" ..
              "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
      ["2"] = "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554" ..
              "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
      ["3"] = "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39" ..
              "bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
      ["4"] = "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db" ..
              "a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
      ["6"] = "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352" ..
              "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
      ["7"] = "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944" ..
              "b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
    }, r.sha512)
    assert.are.equal(r.sha256["2"], r.pieces)
  end)

  it("takes an empty key, and signs a cookie as the README shows", function()
    local r = eval([[
      R.empty = crypto.createHmac("sha256", ""):update(""):digest("hex")
      R.md5 = crypto.createHmac("md5", "key"):update("The quick brown fox jumps over the lazy dog"):digest("hex")
      R.sha1 = crypto.createHmac("sha1", "key"):update("The quick brown fox jumps over the lazy dog"):digest("base64")
    ]])
    assert.are.equal("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", r.empty)
    assert.are.equal("80070713463e7749b90c2dc24911e275", r.md5)
    assert.are.equal("3nybhbi3iqa8ino29wqQcBydtNk=", r.sha1)
  end)

  it("refuses a second digest, an unknown algorithm and a key that is not a string", function()
    local r = eval(CATCH .. [[
      local m = crypto.createHmac("sha256", "k")
      m:digest()
      R.again = catch(function() m:digest("hex") end)
      R.update = catch(function() m:update("x") end)
      R.unknown = catch(function() local h = crypto.createHmac("sha257", "k") return h end)
      R.xof = catch(function() local h = crypto.createHmac("shake128", "k") return h end)
      R.key = catch(function() local h = crypto.createHmac("sha256", 12) return h end)
      R.no_key = catch(function() local h = crypto.createHmac("sha256") return h end)
      R.tostring = tostring(crypto.createHmac("sha512", "k"))
    ]])
    assert.are.equal("Digest already called", r.again)
    assert.are.equal("Digest already called", r.update)
    assert.are.equal("bad argument #1 to 'createHmac' (digest method not supported: 'sha257')", r.unknown)
    assert.are.equal("bad argument #1 to 'createHmac' (digest method not supported: 'shake128')", r.xof)
    assert.are.equal("bad argument #2 to 'createHmac' (string expected, got number)", r.key)
    assert.are.equal("bad argument #2 to 'createHmac' (string expected, got no value)", r.no_key)
    assert.are.equal("Hmac (SHA512)", r.tostring)
  end)
end)

describe("crypto.hash", function()
  after_each(lc.cleanup)

  it("hashes in one call, hex by default", function()
    local r = eval(CATCH .. [[
      R.default = crypto.hash("sha1", "abc")
      R.base64 = crypto.hash("sha256", "abc", "base64")
      R.raw_len = #crypto.hash("sha512", "abc", "binary")
      R.unknown = catch(function() local d = crypto.hash("nope", "x") return d end)
      R.data = catch(function() local d = crypto.hash("sha1") return d end)
    ]])
    assert.are.equal("a9993e364706816aba3e25717850c26c9cd0d89d", r.default)
    assert.are.equal("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=", r.base64)
    assert.are.equal(64, r.raw_len)
    assert.are.equal("bad argument #1 to 'hash' (digest method not supported: 'nope')", r.unknown)
    assert.are.equal("bad argument #2 to 'hash' (string expected, got no value)", r.data)
  end)
end)

describe("crypto.randomBytes", function()
  after_each(lc.cleanup)

  it("gives as many bytes as asked, different every time, covering every byte value", function()
    local r = eval([[
      R.lengths = {}
      for _, n in ipairs({ 0, 1, 16, 1000, 65536 }) do R.lengths[#R.lengths + 1] = #crypto.randomBytes(n) end
      local seen, distinct = {}, 0
      for _ = 1, 1000 do
        local b = crypto.randomBytes(16)
        if not seen[b] then seen[b] = true distinct = distinct + 1 end
      end
      R.distinct = distinct
      local values, big = {}, crypto.randomBytes(65536)
      for i = 1, #big do values[big:byte(i)] = true end
      local n = 0
      for _ in pairs(values) do n = n + 1 end
      R.byte_values = n
      R.sample = require("hex").encode(crypto.randomBytes(16))
    ]])
    assert.are.same({ 0, 1, 16, 1000, 65536 }, r.lengths)
    assert.are.equal(1000, r.distinct)
    -- 64 KiB of uniform bytes miss a given value with probability ~e^-256.
    assert.are.equal(256, r.byte_values)
    -- A second process draws other bytes.
    local again = eval([[ R.sample = require("hex").encode(crypto.randomBytes(16)) ]])
    assert.are_not.equal(r.sample, again.sample)
  end)

  it("refuses sizes that are negative, fractional, too large or not numbers", function()
    local r = eval(CATCH .. [[
      local function try(n) return catch(function() local b = crypto.randomBytes(n) return b end) end
      R.negative = try(-1)
      R.fraction = try(1.5)
      R.too_large = try(2^30 + 1)
      R.nan = try(0/0)
      R.inf = try(math.huge)
      R.string = try("16")
      R.missing = catch(function() local b = crypto.randomBytes() return b end)
    ]])
    local range = "bad argument #1 to 'randomBytes' (size must be an integer from 0 to 1073741824)"
    assert.are.same({ range, range, range, range, range },
      { r.negative, r.fraction, r.too_large, r.nan, r.inf })
    assert.are.equal("bad argument #1 to 'randomBytes' (number expected, got string)", r.string)
    assert.are.equal("bad argument #1 to 'randomBytes' (number expected, got nil)", r.missing)
  end)

  it("calls back with (nil, bytes) on a later turn of the loop when given a callback", function()
    local r = eval(CATCH .. [[
      R.order, R.later = {}, true
      crypto.randomBytes(24, function(err, bytes)
        R.order[#R.order + 1] = "callback"
        R.err = err == nil
        R.len = #bytes
        print('RESULT ' .. cjson.encode(R))
        process.exit(0)
      end)
      R.order[#R.order + 1] = "after call"
      R.bad_size = catch(function() crypto.randomBytes(-5, function() end) end)
      R.bad_fn = catch(function() crypto.randomBytes(5, "nope") end)
    ]])
    assert.are.same({ "after call", "callback" }, r.order)
    assert.is_true(r.err)
    assert.are.equal(24, r.len)
    assert.matches("size must be an integer", r.bad_size)
    assert.matches("bad argument #2 to 'randomBytes' %(function expected, got string%)", r.bad_fn)
  end)
end)

describe("crypto.randomUUID", function()
  after_each(lc.cleanup)

  it("makes distinct lower-case version 4 UUIDs with the RFC 4122 variant", function()
    local r = eval([[
      R.uuids, R.distinct = {}, 0
      local seen = {}
      for i = 1, 1000 do
        local u = crypto.randomUUID()
        if i <= 50 then R.uuids[i] = u end
        if not seen[u] then seen[u] = true R.distinct = R.distinct + 1 end
      end
    ]])
    assert.are.equal(1000, r.distinct)
    for _, u in ipairs(r.uuids) do
      assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", u)
      assert.are.equal(u:lower(), u)
    end
  end)
end)

describe("crypto.timingSafeEqual", function()
  after_each(lc.cleanup)

  it("compares equal-length strings, and refuses different lengths as Node", function()
    local r = eval(CATCH .. [[
      R.equal = crypto.timingSafeEqual("secret-mac", "secret-mac")
      R.differ_last = crypto.timingSafeEqual("secret-mac", "secret-maC")
      R.differ_first = crypto.timingSafeEqual("xecret-mac", "secret-mac")
      R.empty = crypto.timingSafeEqual("", "")
      R.binary = crypto.timingSafeEqual("a\0b", "a\0c")
      R.lengths = catch(function() return crypto.timingSafeEqual("abc", "abcd") end)
      R.type = catch(function() local ok = crypto.timingSafeEqual("abc", 123) return ok end)
    ]])
    assert.is_true(r.equal)
    assert.is_false(r.differ_last)
    assert.is_false(r.differ_first)
    assert.is_true(r.empty)
    assert.is_false(r.binary)
    assert.are.equal("Input buffers must have the same byte length", r.lengths)
    assert.are.equal("bad argument #2 to 'timingSafeEqual' (string expected, got number)", r.type)
  end)
end)

describe("base64 and hex", function()
  after_each(lc.cleanup)

  it("encode the RFC 4648 vectors", function()
    local r = eval([[
      local base64, hex = require("base64"), require("hex")
      R.b64, R.b64url, R.hex = {}, {}, {}
      for i, s in ipairs({ "", "f", "fo", "foo", "foob", "fooba", "foobar" }) do
        R.b64[i], R.b64url[i], R.hex[i] = base64.encode(s), base64.encodeURL(s), hex.encode(s)
      end
    ]])
    assert.are.same({ "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" }, r.b64)
    assert.are.same({ "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" }, r.b64url)
    assert.are.same({ "", "66", "666f", "666f6f", "666f6f62", "666f6f6261", "666f6f626172" }, r.hex)
  end)

  it("round-trip every byte value and large inputs", function()
    local r = eval([[
      local base64, hex = require("base64"), require("hex")
      local all = {}
      for b = 0, 255 do all[#all + 1] = string.char(b) end
      all = table.concat(all)
      local big = crypto.randomBytes(100000)
      R.ok = {}
      for _, s in ipairs({ all, big, all:sub(1, 1), all:sub(1, 2) }) do
        R.ok[#R.ok + 1] = base64.decode(base64.encode(s)) == s and base64.decode(base64.encodeURL(s)) == s
          and hex.decode(hex.encode(s)) == s and hex.decode(hex.encode(s):upper()) == s
      end
      R.all_b64 = base64.encode(all)
      R.all_url = base64.encodeURL(all)
    ]])
    assert.are.same({ true, true, true, true }, r.ok)
    assert.matches("^AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", r.all_b64)
    assert.are.equal("+/w==", r.all_b64:sub(-5))
    assert.matches("-_w$", r.all_url)
  end)

  it("decode either alphabet, without padding, across line breaks", function()
    local r = eval([[
      local base64 = require("base64")
      R.std = base64.decode("+/+/")
      R.url = base64.decode("-_-_")
      R.unpadded = base64.decode("Zm9vYg")
      R.padded = base64.decode("Zm9vYg==")
      R.lines = base64.decode("Zm9v\r\nYmFy\n")
      R.spaces = base64.decode(" Zm 9v ")
    ]])
    assert.are.equal(r.std, r.url)
    assert.are.same({ "foob", "foob", "foobar", "foo" }, { r.unpadded, r.padded, r.lines, r.spaces })
  end)

  it("return nil and the reason for invalid input", function()
    local r = eval(CATCH .. [[
      local base64, hex = require("base64"), require("hex")
      local function pair(a, b) return { tostring(a), tostring(b) } end
      R.b64_char = pair(base64.decode("Zm9v$mFy"))
      R.b64_truncated = pair(base64.decode("Zm9vY"))
      R.b64_pad_middle = pair(base64.decode("Zg==Zg=="))
      R.b64_pad_early = pair(base64.decode("Z==="))
      R.b64_too_much_pad = pair(base64.decode("Zg==="))
      R.hex_odd = pair(hex.decode("abc"))
      R.hex_char = pair(hex.decode("abzz"))
      R.type = catch(function() local s = base64.encode(42) return s end)
      R.hex_type = catch(function() local s = hex.decode(nil) return s end)
      R.not_globals = { type(base64_global), rawget(_G, "base64") == nil, rawget(_G, "hex") == nil }
    ]])
    assert.are.same({ "nil", "invalid base64 character at position 5" }, r.b64_char)
    assert.are.same({ "nil", "invalid base64: truncated data" }, r.b64_truncated)
    assert.are.same({ "nil", "invalid base64 character at position 5" }, r.b64_pad_middle)
    assert.are.same({ "nil", "invalid base64 character at position 2" }, r.b64_pad_early)
    assert.are.same({ "nil", "invalid base64 character at position 5" }, r.b64_too_much_pad)
    assert.are.same({ "nil", "invalid hex: odd length" }, r.hex_odd)
    assert.are.same({ "nil", "invalid hex character at position 3" }, r.hex_char)
    assert.are.equal("bad argument #1 to 'encode' (string expected, got number)", r.type)
    assert.are.equal("bad argument #1 to 'decode' (string expected, got nil)", r.hex_type)
    assert.are.same({ "nil", true, true }, r.not_globals)
  end)
end)

describe("the crypto module", function()
  after_each(lc.cleanup)

  it("is the global crypto and require('crypto'), in workers too", function()
    local p = lc.run([[
      local same = require("crypto") == crypto
      if cluster.isMaster then
        print("MASTER", same, crypto.hash("md5", "x"))
        cluster.fork()
      else
        print("WORKER", same, crypto.hash("md5", "x"), require("crypto").randomUUID():len())
        process.exit(0)
      end
    ]])
    assert.are.same({ "true", "9dd4e461268c8034f5c8564e155c67a6" }, { p:wait_for("MASTER\t(%a+)\t(%x+)") })
    assert.are.same({ "true", "9dd4e461268c8034f5c8564e155c67a6", "36" },
      { p:wait_for("WORKER\t(%a+)\t(%x+)\t(%d+)") })
    assert.are.equal(0, p:wait_exit())
  end)
end)
