-- Smoke test for the cdemo rock: run with LuaJIT against an installed tree,
-- e.g. LUA_CPATH='/t/lib/lua/5.1/?.so;;' luajit smoke.lua
local cdemo = require("cdemo")

local sum = cdemo.add(2, 3)
if sum ~= 5 then
    error(("cdemo: add(2, 3) returned %s, expected 5"):format(tostring(sum)))
end

local version = cdemo.version()
if version ~= "1.0" then
    error(("cdemo: version() returned %s, expected \"1.0\""):format(tostring(version)))
end

local ok = pcall(cdemo.add, "x", 1)
if ok then
    error("cdemo: add(\"x\", 1) did not raise an error")
end

print(("cdemo ok: add(2, 3) = %d"):format(sum))
