-- qjson.table (qjson-crates): a small, honest stand-in for lua-qjson's lazy
-- table API (qjson.decode / qjson.encode).
--
-- Upstream returns lazy proxies backed by the native document. The demo ABI
-- has no cursor or iteration functions, so this module does the plain thing:
--
--   * decode(s) first lets the native library validate `s` (same error
--     messages as qjson.parse), then builds ordinary Lua tables in Lua.
--     Numbers become Lua numbers, JSON null becomes qjson.null, and, as
--     upstream, the top-level value must be an object or an array.
--   * encode(v) serialises plain Lua values in the style of cjson.encode.
--   * pairs / ipairs / len / materialize are the standard functions (or the
--     identity), since decoded values are already plain tables.

local _M = {}

-- Reuse lua-cjson's sentinels when it is installed, as upstream does, so
-- `v == cjson.null` comparisons keep working.
local has_cjson, cjson = pcall(require, "cjson")
if has_cjson and type(cjson) == "table" and cjson.null ~= nil then
    _M.null = cjson.null
    _M.empty_array_mt = cjson.empty_array_mt or { __jsontype = "array" }
else
    _M.null = setmetatable({}, { __tostring = function() return "null" end })
    _M.empty_array_mt = { __jsontype = "array" }
end

-- Decoded containers remember whether they were JSON arrays, so that
-- encode(decode("[]")) gives "[]" again. Weak keys: no leaks.
local ARRAY_HINT = setmetatable({}, { __mode = "k" })

local MAX_DEPTH = 1000   -- encode only; decode is bounded by the native parser

-------------------------------------------------------------------------------
-- decode
-------------------------------------------------------------------------------

local byte, sub, find, match = string.byte, string.sub, string.find, string.match
local char, concat, floor = string.char, table.concat, math.floor

local ESCAPES = {
    ['"'] = '"', ["\\"] = "\\", ["/"] = "/",
    b = "\b", f = "\f", n = "\n", r = "\r", t = "\t",
}

local function fail(pos, what)
    error(string.format("qjson: %s at byte %d", what, pos), 0)
end

local function utf8_encode(cp)
    if cp < 0x80 then
        return char(cp)
    elseif cp < 0x800 then
        return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40)
    elseif cp < 0x10000 then
        return char(0xE0 + floor(cp / 0x1000),
                    0x80 + floor(cp / 0x40) % 0x40,
                    0x80 + cp % 0x40)
    end
    return char(0xF0 + floor(cp / 0x40000),
                0x80 + floor(cp / 0x1000) % 0x40,
                0x80 + floor(cp / 0x40) % 0x40,
                0x80 + cp % 0x40)
end

local function skip_ws(s, i)
    return find(s, "[^ \t\r\n]", i) or (#s + 1)
end

-- s:sub(i, i) is the opening quote. Returns the string and the next index.
local function decode_string(s, i)
    local parts, n = {}, 0
    local j = i + 1
    while true do
        local k = find(s, '["\\]', j)
        if not k then fail(i, "unterminated string") end
        if k > j then
            n = n + 1
            parts[n] = sub(s, j, k - 1)
        end
        if byte(s, k) == 34 then -- '"'
            return concat(parts), k + 1
        end
        local e = sub(s, k + 1, k + 1)
        if e == "u" then
            local hex = match(s, "^%x%x%x%x", k + 2)
            if not hex then fail(k, "bad \\u escape") end
            local cp = tonumber(hex, 16)
            j = k + 6
            if cp >= 0xD800 and cp <= 0xDBFF then
                local lo_hex = match(s, "^\\u(%x%x%x%x)", j)
                local lo = lo_hex and tonumber(lo_hex, 16)
                if not lo or lo < 0xDC00 or lo > 0xDFFF then
                    fail(k, "unpaired surrogate")
                end
                cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
                j = j + 6
            elseif cp >= 0xDC00 and cp <= 0xDFFF then
                fail(k, "unpaired surrogate")
            end
            n = n + 1
            parts[n] = utf8_encode(cp)
        else
            local r = ESCAPES[e]
            if not r then fail(k, "bad escape") end
            n = n + 1
            parts[n] = r
            j = k + 2
        end
    end
end

local decode_value

local function decode_array(s, i)
    local arr, n = {}, 0
    ARRAY_HINT[arr] = true
    i = skip_ws(s, i + 1)
    if byte(s, i) == 93 then -- ']'
        return arr, i + 1
    end
    while true do
        local v
        v, i = decode_value(s, i)
        n = n + 1
        arr[n] = v
        i = skip_ws(s, i)
        local c = byte(s, i)
        if c == 93 then return arr, i + 1 end
        if c ~= 44 then fail(i, "expected ',' or ']'") end
        i = skip_ws(s, i + 1)
    end
end

local function decode_object(s, i)
    local obj = {}
    i = skip_ws(s, i + 1)
    if byte(s, i) == 125 then -- '}'
        return obj, i + 1
    end
    while true do
        if byte(s, i) ~= 34 then fail(i, "expected a string key") end
        local k
        k, i = decode_string(s, i)
        i = skip_ws(s, i)
        if byte(s, i) ~= 58 then fail(i, "expected ':'") end
        local v
        v, i = decode_value(s, skip_ws(s, i + 1))
        obj[k] = v
        i = skip_ws(s, i)
        local c = byte(s, i)
        if c == 125 then return obj, i + 1 end
        if c ~= 44 then fail(i, "expected ',' or '}'") end
        i = skip_ws(s, i + 1)
    end
end

decode_value = function(s, i)
    local c = byte(s, i)
    if c == 123 then return decode_object(s, i) end      -- '{'
    if c == 91 then return decode_array(s, i) end        -- '['
    if c == 34 then return decode_string(s, i) end       -- '"'
    if find(s, "^true", i) then return true, i + 4 end
    if find(s, "^false", i) then return false, i + 5 end
    if find(s, "^null", i) then return _M.null, i + 4 end
    local num = match(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", i)
    local v = num and tonumber(num)
    if v == nil then fail(i, "unexpected character") end
    return v, i + #num
end

local function get_qjson()
    -- Deferred: qjson.lua requires this module while it is being loaded.
    return require("qjson")
end

function _M.decode(json_str)
    -- Validation (and its error message) comes from the native parser.
    get_qjson().parse(json_str)
    local i = skip_ws(json_str, 1)
    local c = byte(json_str, i)
    if c ~= 123 and c ~= 91 then
        error("qjson: top-level JSON value is not an object or array", 2)
    end
    local v = decode_value(json_str, i)
    return v
end

-------------------------------------------------------------------------------
-- encode
-------------------------------------------------------------------------------

local ESCAPE_OUT = {
    ['"'] = '\\"', ["\\"] = "\\\\", ["/"] = "\\/",
    ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
for cp = 0, 31 do
    local ch = char(cp)
    if not ESCAPE_OUT[ch] then
        ESCAPE_OUT[ch] = string.format("\\u%04x", cp)
    end
end
ESCAPE_OUT[char(127)] = "\\u007f"

local function encode_string(s)
    return '"' .. s:gsub('[%c"\\/]', ESCAPE_OUT) .. '"'
end

local function encode_number(x)
    if x ~= x or x == math.huge or x == -math.huge then
        error("qjson: cannot encode NaN or infinity", 0)
    end
    if x == floor(x) and x > -1e15 and x < 1e15 then
        return string.format("%d", x)
    end
    return string.format("%.14g", x)
end

-- "array", "object", or raises for tables cjson would also refuse.
local function table_kind(t)
    if getmetatable(t) == _M.empty_array_mt or ARRAY_HINT[t] then
        return "array", #t
    end
    local count, max, all_int = 0, 0, true
    for k in pairs(t) do
        count = count + 1
        if type(k) == "number" and k > 0 and k == floor(k) then
            if k > max then max = k end
        else
            all_int = false
            if type(k) ~= "string" and type(k) ~= "number" then
                error("qjson: cannot encode a table key of type " .. type(k), 0)
            end
        end
    end
    if count == 0 then return "object" end
    if not all_int then return "object" end
    if max > 10 and max > count * 2 then
        error("qjson: cannot encode an excessively sparse array", 0)
    end
    return "array", max
end

local encode_value

local function encode_table(t, depth, seen)
    if depth > MAX_DEPTH then
        error("qjson: cannot encode tables nested deeper than " .. MAX_DEPTH, 0)
    end
    if seen[t] then
        error("qjson: cannot encode a table that contains itself", 0)
    end
    seen[t] = true
    local out = {}
    local kind, n = table_kind(t)
    local s
    if kind == "array" then
        for i = 1, n do
            out[i] = encode_value(t[i], depth + 1, seen)
        end
        s = "[" .. concat(out, ",") .. "]"
    else
        local m = 0
        for k, v in pairs(t) do
            m = m + 1
            out[m] = encode_string(tostring(k)) .. ":" .. encode_value(v, depth + 1, seen)
        end
        s = "{" .. concat(out, ",") .. "}"
    end
    seen[t] = nil
    return s
end

encode_value = function(v, depth, seen)
    local tv = type(v)
    if v == nil or v == _M.null then return "null" end
    if tv == "boolean" then return v and "true" or "false" end
    if tv == "number" then return encode_number(v) end
    if tv == "string" then return encode_string(v) end
    if tv == "table" then return encode_table(v, depth, seen) end
    if tv == "cdata" then
        -- int64_t / uint64_t values such as doc:get_i64() results.
        local digits = match(tostring(v), "^(-?%d+)U?LL$")
        if digits then return digits end
    end
    error("qjson: cannot encode a value of type " .. tv, 0)
end

function _M.encode(v)
    return encode_value(v, 0, {})
end

-------------------------------------------------------------------------------
-- helpers kept for API shape (decoded values are plain tables)
-------------------------------------------------------------------------------

function _M.materialize(v)
    return v
end

_M.pairs = pairs
_M.ipairs = ipairs

function _M.len(t)
    return #t
end

return _M
