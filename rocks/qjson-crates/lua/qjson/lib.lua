-- qjson.lib (qjson-crates): declares the C ABI subset and loads the native library.
--
-- Stand-in for lua-qjson's module of the same name. Only the functions the
-- demo library exports are declared. The library is looked up like upstream
-- does it: ffi.load("qjson"), ffi.load("libqjson"), then every package.cpath
-- template with "?" replaced by "qjson" and by "libqjson". If nothing loads,
-- the error names every candidate that was tried.

local ffi = require("ffi")

ffi.cdef[[
typedef struct qjson_doc qjson_doc;

const char* qjson_strerror(int code);
qjson_doc*  qjson_parse   (const uint8_t* buf, size_t len, int* err_out);
void        qjson_free    (qjson_doc* doc);

int qjson_get_str(qjson_doc*, const char* path, size_t path_len,
                  const uint8_t** out_ptr, size_t* out_len);
int qjson_get_i64(qjson_doc*, const char* path, size_t path_len, int64_t* out);
]]

-- A library that loads but lacks one of these is not accepted (for example
-- an unrelated libqjson.so found first on the search path).
local REQUIRED_SYMBOLS = {
    "qjson_strerror",
    "qjson_parse",
    "qjson_free",
    "qjson_get_str",
    "qjson_get_i64",
}

local attempted = {}   -- candidates in the order they were tried
local seen = {}        -- candidate -> true, so nothing is tried twice
local rejected = {}    -- libraries that loaded but lack a required symbol
local last_error = "no candidate tried"

local function has_symbol(lib, name)
    local ok, sym = pcall(function() return lib[name] end)
    return ok and sym ~= nil
end

local function try_load(candidate)
    if seen[candidate] then
        return nil
    end
    seen[candidate] = true
    attempted[#attempted + 1] = candidate

    local ok, lib_or_err = pcall(ffi.load, candidate)
    if not ok then
        last_error = tostring(lib_or_err)
        return nil
    end
    for _, name in ipairs(REQUIRED_SYMBOLS) do
        if not has_symbol(lib_or_err, name) then
            last_error = "loaded " .. candidate .. " but it does not export " .. name
            rejected[#rejected + 1] = candidate .. " (no " .. name .. ")"
            return nil
        end
    end
    return lib_or_err
end

local function try_cpath()
    local cpath = package.cpath or ""
    for template in cpath:gmatch("[^;]+") do
        if template:find("?", 1, true) then
            for _, base in ipairs({ "qjson", "libqjson" }) do
                -- A function replacement keeps "%" in paths literal.
                local candidate = template:gsub("%?", function() return base end)
                local lib = try_load(candidate)
                if lib then
                    return lib
                end
            end
        end
    end
    return nil
end

local lib = try_load("qjson") or try_load("libqjson") or try_cpath()
if not lib then
    local msg = "qjson: failed to load native library qjson; tried "
        .. table.concat(attempted, ", ")
    if #rejected > 0 then
        msg = msg .. "; loaded but rejected: " .. table.concat(rejected, ", ")
    end
    error(msg .. "; last error: " .. last_error)
end

return lib
