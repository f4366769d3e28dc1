"""The files luarocks installed in an image, as the rocks' rock_manifests list them, and
whether each is there with the md5 its rock_manifest gives."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from qjson_tasks.errors import VerificationError
from qjson_tasks.luarocks.rock_manifest import ManifestTree, parse_rock_manifest
from qjson_tasks.verify.rootfs import resolve_in_root

ProblemKind = Literal["missing", "not a file", "md5 mismatch"]


@dataclass(frozen=True)
class ManifestFile:
    """One file of a rock: `kind` is its top-level manifest dir ('' at the top)."""

    kind: str
    relative: str
    md5: str
    tree_path: PurePosixPath

    @property
    def entry(self) -> str:
        """The file's path as written in the manifest, e.g. `lua/qjson/lib.lua`."""
        return f"{self.kind}/{self.relative}" if self.kind else self.relative


@dataclass(frozen=True)
class InstalledRock:
    """A rock luarocks installed: its rock_manifest and the files it lists."""

    name: str
    version: str
    manifest_path: PurePosixPath
    files: tuple[ManifestFile, ...]

    @property
    def rock_dir(self) -> PurePosixPath:
        """The rock's own directory, `<tree>/lib/luarocks/rocks-<luaver>/<name>/<version>`."""
        return self.manifest_path.parent


@dataclass(frozen=True)
class FileProblem:
    """A rock's file that is missing or differs from its rock_manifest md5."""

    file: ManifestFile
    problem: ProblemKind
    expected_md5: str
    actual_md5: str | None = None

    @property
    def message(self) -> str:
        where = f"{self.file.tree_path} ({self.file.entry})"
        if self.problem == "md5 mismatch":
            return (
                f"{where}: md5 mismatch: rock_manifest says {self.expected_md5}, "
                f"the file has {self.actual_md5}"
            )
        return f"{where}: {self.problem}"


def rocks_dir(tree: PurePosixPath, lua_version: str) -> PurePosixPath:
    return tree / "lib" / "luarocks" / f"rocks-{lua_version}"


def deployed_path(
    kind: str, relative: str, tree: PurePosixPath, lua_version: str, rock_dir: PurePosixPath
) -> PurePosixPath:
    """Where luarocks 3 deploys a manifest entry."""
    if kind == "lua":
        return tree / "share" / "lua" / lua_version / relative
    if kind == "lib":
        return tree / "lib" / "lua" / lua_version / relative
    if kind == "bin":
        return tree / "bin" / relative
    # Everything else (rockspec, doc/, ...) stays in the rock's own directory.
    return rock_dir / kind / relative  # kind is '' for files at the manifest's top


def _flatten(tree: ManifestTree, prefix: str = "") -> list[tuple[str, str]]:
    files: list[tuple[str, str]] = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            files.extend(_flatten(value, f"{path}/"))
        else:
            files.append((path, value))
    return files


def manifest_files(
    tree: ManifestTree, install_tree: PurePosixPath, lua_version: str, rock_dir: PurePosixPath
) -> tuple[ManifestFile, ...]:
    """The files a parsed rock_manifest lists, with where luarocks deployed them."""
    files = []
    for entry, md5 in _flatten(tree):
        kind, _, relative = entry.partition("/") if "/" in entry else ("", "", entry)
        tree_path = deployed_path(kind, relative, install_tree, lua_version, rock_dir)
        files.append(ManifestFile(kind, relative, md5, tree_path))
    return tuple(files)


def _subdirs(root: Path, directory: PurePosixPath) -> list[str]:
    host = resolve_in_root(root, directory)
    if host is None or not host.is_dir():
        return []
    names = sorted(child.name for child in host.iterdir())
    return [name for name in names if _is_dir_in_root(root, directory / name)]


def _is_dir_in_root(root: Path, path: PurePosixPath) -> bool:
    host = resolve_in_root(root, path)
    return host is not None and host.is_dir()


def _read_text(host: Path, source: PurePosixPath) -> str:
    try:
        return host.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise VerificationError(f"{source}: not UTF-8 text: {error}") from error


def find_installed_rocks(root: Path, tree: PurePosixPath, lua_version: str) -> list[InstalledRock]:
    """Every rock installed in the in-image luarocks `tree` (e.g. /usr/local)."""
    base = rocks_dir(tree, lua_version)
    rocks = []
    for name in _subdirs(root, base):
        for version in _subdirs(root, base / name):
            manifest_path = base / name / version / "rock_manifest"
            host = resolve_in_root(root, manifest_path)
            if host is None or not host.is_file():
                continue
            parsed = parse_rock_manifest(_read_text(host, manifest_path), str(manifest_path))
            files = manifest_files(parsed, tree, lua_version, manifest_path.parent)
            rocks.append(InstalledRock(name, version, manifest_path, files))
    return rocks


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 16):
            digest.update(chunk)
    return digest.hexdigest()


def _md5_in_root(root: Path, path: PurePosixPath) -> str | None:
    host = resolve_in_root(root, path)
    return file_md5(host) if host is not None and host.is_file() else None


def check_file(root: Path, rock: InstalledRock, file: ManifestFile) -> FileProblem | None:
    """The problem with one of the rock's files, if any."""
    host = resolve_in_root(root, file.tree_path)
    if host is None:
        return FileProblem(file, "missing", file.md5)
    if not host.is_file():
        return FileProblem(file, "not a file", file.md5)
    actual = file_md5(host)
    if actual == file.md5:
        return None
    # luarocks replaces a Lua script in bin/ with a wrapper and keeps the original
    # in the rock's own bin/, so the original is what the manifest's md5 covers.
    if file.kind == "bin" and _md5_in_root(root, rock.rock_dir / "bin" / file.relative) == file.md5:
        return None
    return FileProblem(file, "md5 mismatch", file.md5, actual)


def check_files(root: Path, rock: InstalledRock) -> list[FileProblem]:
    """Missing files and md5 mismatches of an installed rock."""
    problems = (check_file(root, rock, file) for file in rock.files)
    return [problem for problem in problems if problem is not None]
