-- Demo stand-in for lua-qjson with crate dependencies, in upstream's shape: a `command`
-- build running plain `cargo build --release` (no --locked, no --offline), which fetches
-- memchr and once_cell from whatever registry cargo's config names. The tests publish this
-- rockspec on a loopback rock server with source.url pointing at a loopback git server.
package = "qjson-crates"
version = "0.1.0-1"
supported_platforms = { "linux", "macosx" }

source = {
    -- `luarocks make` builds the current directory and never fetches this; the tests'
    -- rock server rewrites it to a git URL and tag.
    url = "file://.",
}

description = {
    summary = "Stand-in for lua-qjson with crate dependencies (demo JSON decoder, qjson FFI API)",
    detailed = [[
        A small Rust JSON parser exposed to LuaJIT through FFI with a subset of
        lua-qjson's C ABI (qjson_parse, qjson_free, qjson_get_str,
        qjson_get_i64, qjson_strerror) and the same Lua module layout
        (qjson, qjson.lib, qjson.table). It exists so builds and tests can run
        without a luarocks server. It is not the real lua-qjson decoder. Its
        string scanner uses the memchr and once_cell crates.
    ]],
    license = "Apache-2.0",
}

dependencies = {
    "lua == 5.1",
}

build = {
    type = "command",
    build_command = "cargo build --release",
    install_command = [[
        set -e;
        mkdir -p "$(LUADIR)/qjson" "$(LIBDIR)";
        cp lua/qjson.lua "$(LUADIR)/qjson.lua";
        cp lua/qjson/lib.lua "$(LUADIR)/qjson/lib.lua";
        cp lua/qjson/table.lua "$(LUADIR)/qjson/table.lua";
        lib=target/release/libqjson.so;
        [ -f "$lib" ] || lib=target/release/libqjson.dylib;
        if [ ! -f "$lib" ]; then echo "qjson-crates: native library not found under target/release" >&2; exit 1; fi;
        cp "$lib" "$(LIBDIR)/qjson.so"
    ]],
}
