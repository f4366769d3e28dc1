"""The manifest of an installed luarocks tree: installed rocks and the runtime closure."""

from __future__ import annotations

import pytest

from qjson_tasks.errors import RockError
from qjson_tasks.luarocks.treemanifest import installed_rocks, runtime_closure

SOURCE = "/usr/local/lib/luarocks/rocks-5.1/manifest"

# Written by luarocks 3.8 after installing cdemo, whose build_dependencies pulled
# qjt-buildtool into the same tree.
TREE_MANIFEST = """commands = {}
dependencies = {
   cdemo = {
      ["1.0-1"] = {
         {
            constraints = {
               {
                  op = ">=",
                  version = {
                     5, 1, string = "5.1"
                  }
               }
            },
            name = "lua"
         }
      }
   },
   ["qjt-buildtool"] = {
      ["1.0-1"] = {}
   }
}
modules = {
   cdemo = {
      "cdemo/1.0-1"
   },
   qjt_buildtool = {
      "qjt-buildtool/1.0-1"
   }
}
repository = {
   cdemo = {
      ["1.0-1"] = {
         {
            arch = "installed",
            commands = {},
            dependencies = {},
            modules = {
               cdemo = "cdemo.so"
            }
         }
      }
   },
   ["qjt-buildtool"] = {
      ["1.0-1"] = {
         {
            arch = "installed",
            commands = {},
            dependencies = {},
            modules = {
               qjt_buildtool = "qjt_buildtool.lua"
            }
         }
      }
   }
}
"""


def manifest(rocks: dict[str, tuple[str, list[str]]], with_dependencies: bool = True) -> str:
    """A tree manifest: rock name -> (version, names it depends on)."""
    repository = ",\n".join(
        f'   ["{name}"] = {{ ["{version}"] = {{ {{ arch = "installed" }} }} }}'
        for name, (version, _) in rocks.items()
    )
    dependencies = ",\n".join(
        f'   ["{name}"] = {{ ["{version}"] = {{ '
        + ", ".join(f'{{ name = "{dep}", constraints = {{}} }}' for dep in deps)
        + " } }"
        for name, (version, deps) in rocks.items()
    )
    text = f"commands = {{}}\nmodules = {{}}\nrepository = {{\n{repository}\n}}\n"
    if with_dependencies:
        text += f"dependencies = {{\n{dependencies}\n}}\n"
    return text


def test_installed_rocks_of_a_real_tree_manifest() -> None:
    assert installed_rocks(TREE_MANIFEST, SOURCE) == {"cdemo": "1.0-1", "qjt-buildtool": "1.0-1"}


def test_build_dependency_is_build_only() -> None:
    kept, build_only = runtime_closure(TREE_MANIFEST, ["cdemo"], SOURCE)
    assert kept == {"cdemo": "1.0-1"}
    assert build_only == {"qjt-buildtool": "1.0-1"}


def test_closure_follows_dependencies_transitively_and_skips_lua() -> None:
    text = manifest(
        {
            "app": ("2.0-1", ["lua", "lpeg", "json"]),
            "json": ("1.3-2", ["lua", "lpeg"]),
            "lpeg": ("1.1.0-1", ["lua"]),
            "busted": ("2.2.0-1", ["lua", "say"]),
            "say": ("1.4.1-3", []),
            "app-tool": ("0.1-1", []),
        }
    )
    kept, build_only = runtime_closure(text, ["lua", "app"], SOURCE)
    assert kept == {"app": "2.0-1", "lpeg": "1.1.0-1", "json": "1.3-2"}
    assert list(kept) == ["app", "lpeg", "json"]  # requested first, then as reached
    assert build_only == {"busted": "2.2.0-1", "say": "1.4.1-3", "app-tool": "0.1-1"}


def test_several_requested_rocks_and_shared_dependencies() -> None:
    text = manifest({"a": ("1-1", ["c"]), "b": ("1-1", ["c"]), "c": ("1-1", []), "d": ("1-1", [])})
    kept, build_only = runtime_closure(text, iter(["b", "a"]), SOURCE)
    assert list(kept) == ["b", "a", "c"]
    assert build_only == {"d": "1-1"}


def test_nothing_requested_keeps_nothing() -> None:
    kept, build_only = runtime_closure(TREE_MANIFEST, [], SOURCE)
    assert kept == {}
    assert build_only == {"cdemo": "1.0-1", "qjt-buildtool": "1.0-1"}


def test_manifest_without_dependencies_table() -> None:
    text = manifest({"a": ("1-1", ["b"]), "b": ("1-1", [])}, with_dependencies=False)
    assert runtime_closure(text, ["a"], SOURCE) == ({"a": "1-1"}, {"b": "1-1"})


def test_requested_rock_not_installed() -> None:
    with pytest.raises(RockError) as caught:
        runtime_closure(TREE_MANIFEST, ["qjson"], SOURCE)
    assert str(caught.value) == (
        f"{SOURCE}: qjson (requested) is not installed (installed: cdemo, qjt-buildtool)"
    )


def test_dependency_not_installed() -> None:
    text = manifest({"a": ("1.0-1", ["missing"])})
    with pytest.raises(RockError) as caught:
        runtime_closure(text, ["a"], SOURCE)
    assert str(caught.value) == (
        f"{SOURCE}: missing (needed by a 1.0-1) is not installed (installed: a)"
    )


def test_several_installed_versions_of_a_rock() -> None:
    text = 'repository = { a = { ["1.0-1"] = {}, ["2.0-1"] = {} } }'
    with pytest.raises(RockError) as caught:
        installed_rocks(text, SOURCE)
    assert str(caught.value) == (
        f"{SOURCE}: a is installed in several versions (1.0-1, 2.0-1);"
        " a runtime tree holds one of each rock"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("commands = {}", "not a luarocks tree manifest (no 'repository' table)"),
        ('repository = "x"', "repository: expected a table, got string"),
        ("repository = { a = 1 }", "repository['a']: expected a table, got number"),
        ('repository = { a = { [1] = "x" } }', "a: a version: expected a string, got number"),
        ("repository = {}\ndependencies = 1", "dependencies: expected a table, got number"),
        ("repository = {\n", "line 2: unexpected symbol near <eof>"),
    ],
)
def test_malformed_tree_manifests(text: str, message: str) -> None:
    with pytest.raises(RockError) as caught:
        runtime_closure(text, [], SOURCE)
    assert str(caught.value) == f"{SOURCE}: {message}"


def test_malformed_dependency_entries() -> None:
    text = 'repository = { a = { ["1-1"] = {} } }\ndependencies = { a = { ["1-1"] = { {} } } }'
    with pytest.raises(RockError) as caught:
        runtime_closure(text, ["a"], SOURCE)
    assert str(caught.value) == (
        f"{SOURCE}: dependencies['a']['1-1']: name: expected a string, got nil"
    )
    text = 'repository = { a = { ["1-1"] = {} } }\ndependencies = { a = { ["1-1"] = { x = 1 } } }'
    with pytest.raises(RockError, match=r"expected a list, got a table with key 'x'$"):
        runtime_closure(text, ["a"], SOURCE)
