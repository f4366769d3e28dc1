"""The test fixtures' own pure parts: the sparse registry's layout and index lines, the
rockspec the loopback rock server publishes."""

from __future__ import annotations

import json

from tests.fixtures.crate_registry import dependencies, index_line, index_path
from tests.fixtures.upstream import TAG, server_rockspec


def test_index_paths_follow_cargos_rules() -> None:
    assert index_path("a") == "1/a"
    assert index_path("ab") == "2/ab"
    assert index_path("syn") == "3/s/syn"
    assert index_path("Memchr") == "me/mc/memchr"


def test_index_line_lists_renamed_optional_and_target_dependencies() -> None:
    manifest = {
        "package": {"name": "memchr", "version": "2.5.0"},
        "dependencies": {
            "core": {"version": "1.0.0", "optional": True, "package": "rustc-std-workspace-core"},
            "libc": {"version": "0.2.18", "default-features": False},
        },
        "dev-dependencies": {"quickcheck": "1"},
        "target": {"cfg(unix)": {"build-dependencies": {"cc": "1"}}},
        "features": {"default": ["std"], "std": []},
    }
    entry = json.loads(index_line(manifest, "ab" * 32))
    assert entry["name"] == "memchr" and entry["vers"] == "2.5.0" and entry["cksum"] == "ab" * 32
    deps = {d["name"]: d for d in dependencies(manifest)}
    assert set(deps) == {"core", "libc", "cc"}  # dev-dependencies don't count
    assert deps["core"]["package"] == "rustc-std-workspace-core" and deps["core"]["optional"]
    assert deps["libc"]["default_features"] is False
    assert deps["cc"]["kind"] == "build" and deps["cc"]["target"] == "cfg(unix)"


def test_server_rockspec_points_at_the_git_url_and_tag() -> None:
    text = server_rockspec("git://127.0.0.1:1/qjson-crates.git")
    assert 'url = "git://127.0.0.1:1/qjson-crates.git",' in text
    assert f'tag = "{TAG}",' in text
    assert "file://." not in text
