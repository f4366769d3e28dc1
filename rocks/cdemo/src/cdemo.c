/* cdemo: a tiny stand-in C module for qjson-tasks' tests (Lua 5.1 / LuaJIT C API). */
#include <lua.h>
#include <lauxlib.h>

static int cdemo_add(lua_State *L)
{
    lua_Number a = luaL_checknumber(L, 1);
    lua_Number b = luaL_checknumber(L, 2);
    lua_pushnumber(L, a + b);
    return 1;
}

static int cdemo_version(lua_State *L)
{
    lua_pushliteral(L, "1.0");
    return 1;
}

static const luaL_Reg cdemo_funcs[] = {
    {"add", cdemo_add},
    {"version", cdemo_version},
    {NULL, NULL}
};

int luaopen_cdemo(lua_State *L)
{
    lua_newtable(L);
    luaL_register(L, NULL, cdemo_funcs);
    return 1;
}
