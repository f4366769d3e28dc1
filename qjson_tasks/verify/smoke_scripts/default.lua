-- Default qjson smoke test, run by the image's own LuaJIT
-- (`luajit default.lua` or `luajit -e "<this file>"`).
--
-- Uses only API that lua-qjson itself has (qjson.parse, doc:get_str,
-- doc:get_i64), so it passes against the real rock and the qjson-demo
-- stand-in alike. get_i64 may return an int64_t cdata (or a Lua number in
-- older upstream versions), hence tonumber() before comparing and printing.
-- Success prints exactly one line; any failure raises error().

local ok, qjson = pcall(require, "qjson")
if not ok then
    error("qjson smoke: require(\"qjson\") failed: " .. tostring(qjson), 0)
end
if type(qjson) ~= "table" or type(qjson.parse) ~= "function" then
    error("qjson smoke: require(\"qjson\") did not return a module with parse()", 0)
end

local json = '{"body":{"model":"gpt-4o","n":42,"tags":["a","b"]}}'

local parsed, doc = pcall(qjson.parse, json)
if not parsed then
    error("qjson smoke: qjson.parse failed: " .. tostring(doc), 0)
end
if doc == nil then
    error("qjson smoke: qjson.parse returned nil", 0)
end

local got_model, model = pcall(doc.get_str, doc, "body.model")
if not got_model then
    error("qjson smoke: get_str(\"body.model\") raised: " .. tostring(model), 0)
end
if model ~= "gpt-4o" then
    error("qjson smoke: get_str(\"body.model\") returned " .. tostring(model)
        .. ", expected \"gpt-4o\"", 0)
end

local got_n, n = pcall(doc.get_i64, doc, "body.n")
if not got_n then
    error("qjson smoke: get_i64(\"body.n\") raised: " .. tostring(n), 0)
end
if n == nil or tonumber(n) ~= 42 then
    error("qjson smoke: get_i64(\"body.n\") returned " .. tostring(n)
        .. ", expected 42", 0)
end

print(string.format("qjson smoke ok: model=%s n=%d", model, tonumber(n)))
