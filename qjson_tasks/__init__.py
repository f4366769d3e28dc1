"""qjson-tasks: build Rust-free LuaJIT runtime images that carry a Rust-built rock."""

DEFAULT_TARGET = "offline"
