-- Stand-in build-only dependency for qjson-tasks' tests. Not published anywhere.
rockspec_format = "3.0"
package = "qjt-buildtool"
version = "1.0-1"

source = {
    -- Never fetched: the .src.rock made by rocks/pack.py carries an archive
    -- with this basename.
    url = "https://example.invalid/qjt-buildtool-1.0.tar.gz",
    dir = "qjt-buildtool-1.0",
}

description = {
    summary = "Stand-in build-only dependency (pure Lua) for qjson-tasks' tests",
    license = "Apache-2.0",
}

dependencies = {
    "lua >= 5.1",
}

build = {
    type = "builtin",
    modules = {
        qjt_buildtool = "src/qjt_buildtool.lua",
    },
}
