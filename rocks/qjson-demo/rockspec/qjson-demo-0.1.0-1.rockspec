-- Demo stand-in for lua-qjson, built locally with `luarocks make` from the
-- rock directory (the directory holding Cargo.toml). Not published anywhere.
package = "qjson-demo"
version = "0.1.0-1"
supported_platforms = { "linux", "macosx" }

source = {
    -- `luarocks make` builds the current directory and never fetches this.
    url = "file://.",
}

description = {
    summary = "Offline stand-in for lua-qjson (demo JSON decoder behind the qjson FFI API)",
    detailed = [[
        A small Rust JSON parser exposed to LuaJIT through FFI with a subset of
        lua-qjson's C ABI (qjson_parse, qjson_free, qjson_get_str,
        qjson_get_i64, qjson_strerror) and the same Lua module layout
        (qjson, qjson.lib, qjson.table). It exists so builds and tests can run
        without a luarocks server. It is not the real lua-qjson decoder.
    ]],
    license = "Apache-2.0",
}

dependencies = {
    "lua == 5.1",
}

build = {
    type = "command",
    build_command = "cargo build --release --offline",
    install_command = [[
        set -e;
        mkdir -p "$(LUADIR)/qjson" "$(LIBDIR)";
        cp lua/qjson.lua "$(LUADIR)/qjson.lua";
        cp lua/qjson/lib.lua "$(LUADIR)/qjson/lib.lua";
        cp lua/qjson/table.lua "$(LUADIR)/qjson/table.lua";
        lib=target/release/libqjson.so;
        [ -f "$lib" ] || lib=target/release/libqjson.dylib;
        if [ ! -f "$lib" ]; then echo "qjson-demo: native library not found under target/release" >&2; exit 1; fi;
        cp "$lib" "$(LIBDIR)/qjson.so"
    ]],
}
