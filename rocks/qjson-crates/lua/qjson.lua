-- qjson (qjson-crates): the Lua entry point of the demo rock.
--
-- Stand-in for lua-qjson's qjson.lua, limited to what the demo library's
-- C ABI covers:
--
--   local qjson = require("qjson")
--   local doc   = qjson.parse(json_str)      -- raises "qjson: ..." on bad JSON
--   doc:get_str("body.model")                -- Lua string, or nil if absent
--   doc:get_i64("body.n")                    -- int64_t cdata, or nil if absent
--
-- As upstream: a missing path gives nil, any other failure (wrong type,
-- malformed path, integer out of range) raises "qjson: <reason>". Paths are
-- dotted keys with [N] array indices, e.g. "body.messages[0].role".
-- The document is released by the garbage collector (ffi.gc + qjson_free).
--
-- Doc methods the demo ABI does not cover raise an error that says so.
-- qjson.decode / qjson.encode come from qjson/table.lua (eager stand-in).

local ffi = require("ffi")
local C = require("qjson.lib")

local err_box  = ffi.new("int[1]")
local i64_box  = ffi.new("int64_t[1]")
local size_box = ffi.new("size_t[1]")
local strp_box = ffi.new("const uint8_t*[1]")

-- Same numbering as lua-qjson's qjson_err.
local ERR = {
    OK                  =  0,
    PARSE_ERROR         =  1,
    NOT_FOUND           =  2,
    TYPE_MISMATCH       =  3,
    OUT_OF_RANGE        =  4,
    DECODE_FAILED       =  5,
    INVALID_PATH        =  6,
    INVALID_ARG         =  7,
    OOM                 =  8,
    NESTING_TOO_DEEP    =  9,
    TRAILING_CONTENT    = 10,
    NUMBER_OUT_OF_RANGE = 11,
    INVALID_NUMBER      = 12,
    INVALID_STRING      = 13,
    INVALID_UTF8        = 14,
}

local DEFAULT_MAX_DEPTH = 1024

local _M = {
    T_NULL = 0, T_BOOL = 1, T_NUM = 2,
    T_STR  = 3, T_ARR  = 4, T_OBJ = 5,
    ERR = ERR,
    -- Lets callers (and tests) tell the stand-in from the real rock.
    _demo = true,
}

local Doc = {}
Doc.__index = Doc

local function strerror(code)
    return ffi.string(C.qjson_strerror(code))
end

-- true: value found; false: path not found; raises for anything else.
local function check(rc)
    if rc == ERR.OK then return true end
    if rc == ERR.NOT_FOUND then return false end
    error("qjson: " .. strerror(rc), 3)
end

local function check_path(path)
    if type(path) ~= "string" then
        error("qjson: path must be a string, got " .. type(path), 3)
    end
end

function _M.parse(json_str, opts)
    if type(json_str) ~= "string" then
        error("qjson.parse: expected a JSON string, got " .. type(json_str), 2)
    end
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("qjson.parse: opts must be a table", 2)
        end
        -- The demo always parses eagerly and strictly; `lazy` is accepted
        -- and has no further effect.
        if opts.lazy ~= nil and type(opts.lazy) ~= "boolean" then
            error("qjson.parse: opts.lazy must be a boolean", 2)
        end
        local max_depth = opts.max_depth or 0
        if type(max_depth) ~= "number" or max_depth < 0
            or max_depth ~= math.floor(max_depth) then
            error("qjson.parse: opts.max_depth must be a non-negative integer", 2)
        end
        if max_depth ~= 0 and max_depth ~= DEFAULT_MAX_DEPTH then
            error("qjson.parse: qjson-demo only supports the default max_depth ("
                .. DEFAULT_MAX_DEPTH .. ")", 2)
        end
    end

    local ptr = C.qjson_parse(json_str, #json_str, err_box)
    if ptr == nil then
        error("qjson: " .. strerror(err_box[0]), 2)
    end
    return setmetatable({
        _ptr  = ffi.gc(ptr, C.qjson_free),
        -- The demo library copies the input; the reference is kept anyway
        -- so the object has the same shape as upstream's.
        _hold = json_str,
    }, Doc)
end

function Doc:get_str(path)
    check_path(path)
    local rc = C.qjson_get_str(self._ptr, path, #path, strp_box, size_box)
    if not check(rc) then return nil end
    return ffi.string(strp_box[0], size_box[0])
end

-- Returns an int64_t cdata (not a Lua number), so values beyond 2^53 stay
-- exact. Use tonumber(v) for arithmetic with Lua numbers.
function Doc:get_i64(path)
    check_path(path)
    local rc = C.qjson_get_i64(self._ptr, path, #path, i64_box)
    if not check(rc) then return nil end
    return i64_box[0]
end

local function unsupported(name)
    return function()
        error("qjson-demo: doc:" .. name .. "() is not provided by the demo rock"
            .. " (it implements parse, get_str and get_i64 only)", 2)
    end
end

for _, name in ipairs({ "get_u64", "get_f64", "get_bool", "is_null",
                        "typeof", "len", "open" }) do
    Doc[name] = unsupported(name)
end

-- cjson-shaped table API (eager stand-in, see qjson/table.lua).
local tbl = require("qjson.table")
_M.decode         = tbl.decode
_M.encode         = tbl.encode
_M.materialize    = tbl.materialize
_M.pairs          = tbl.pairs
_M.ipairs         = tbl.ipairs
_M.len            = tbl.len
_M.null           = tbl.null
_M.empty_array_mt = tbl.empty_array_mt

return _M
