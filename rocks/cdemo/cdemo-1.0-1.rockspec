-- Stand-in test rock for qjson-tasks: a plain C module built by luarocks'
-- `builtin` backend, with one build-only dependency. Not published anywhere.
rockspec_format = "3.0"
package = "cdemo"
version = "1.0-1"

source = {
    -- Never fetched: the .src.rock made by rocks/pack.py carries an archive
    -- with this basename, and `luarocks make` builds the current directory.
    url = "https://example.invalid/cdemo-1.0.tar.gz",
    dir = "cdemo-1.0",
}

description = {
    summary = "Stand-in test rock: a tiny plain-C Lua module (builtin build)",
    detailed = [[
        A minimal C module (cdemo.add, cdemo.version) used by qjson-tasks'
        tests and multi-rock target to exercise a second, C-only rock with a
        build-only dependency (qjt-buildtool) served by a local rock server.
    ]],
    license = "Apache-2.0",
}

dependencies = {
    "lua >= 5.1",
}

build_dependencies = {
    "qjt-buildtool >= 1.0",
}

build = {
    type = "builtin",
    modules = {
        cdemo = "src/cdemo.c",
    },
}
