"""What the plan needs from the disk about rocks: a local directory's rockspec (at its root
or under rockspec/) and content digests of local directories and files."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from pathlib import Path

from qjson_tasks.build.plan import RockFacts
from qjson_tasks.build.steps import LocalRock
from qjson_tasks.config.model import Target
from qjson_tasks.config.sources import RockSource
from qjson_tasks.errors import ConfigError

# Left out of a local rock's copy and digest: build outputs and VCS data.
SOURCE_IGNORE = ("target", ".git", "*.rock")


def ignored(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in SOURCE_IGNORE)


def source_digest(directory: Path) -> str:
    """sha256 over a rock directory's paths, file modes (executable or not), contents and
    symlink targets, in a stable order; ignored names are left out. Timestamps don't count."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not ignored(d))
        for name in sorted(f for f in files if not ignored(f)):
            path = Path(root, name)
            relative = path.relative_to(directory).as_posix()
            if path.is_symlink():
                digest.update(f"L {relative} {os.readlink(path)}\0".encode())
                continue
            executable = "x" if os.access(path, os.X_OK) else "-"
            digest.update(f"F {relative} {executable} {path.stat().st_size}\0".encode())
            digest.update(path.read_bytes())
        for name in dirs:
            path = Path(root, name)
            if path.is_symlink():
                relative = path.relative_to(directory).as_posix()
                digest.update(f"L {relative} {os.readlink(path)}\0".encode())
    return digest.hexdigest()


def _version_of(rockspec: Path, name: str) -> str | None:
    """The version in `<name>-<version>-<revision>.rockspec`, None for another rock's file."""
    match = re.fullmatch(rf"{re.escape(name)}-([^-]+-\d+)\.rockspec", rockspec.name)
    return match.group(1) if match else None


def find_local_rock(target: Target, index: int = 0) -> LocalRock | None:
    """The rockspec of a target's rock built from a local directory; None for other sources."""
    rock = target.config.rocks[index]
    if rock.where.kind != "directory":
        return None
    where = f"{target.path}: {target.config.rock_field(index, 'source')}"
    version_field = target.config.rock_field(index, "version")
    directory = Path(rock.source)
    if not directory.is_dir():
        raise ConfigError(f"{where}: '{directory}' is not a directory")
    found = sorted([*directory.glob("*.rockspec"), *directory.glob("rockspec/*.rockspec")])
    if not found:
        raise ConfigError(
            f"{where}: no rockspec in '{directory}' (looked at its root and rockspec/)"
        )
    mine = [p for p in found if _version_of(p, rock.name)]
    if not mine:
        names = ", ".join(p.name for p in found)
        raise ConfigError(f"{where}: no rockspec for rock '{rock.name}' in '{directory}' ({names})")
    requirement = rock.requirement
    matching = [p for p in mine if requirement.allows_text(_version_of(p, rock.name) or "")]
    if not matching:
        versions = ", ".join(_version_of(p, rock.name) or "" for p in mine)
        raise ConfigError(
            f"{where}: '{directory}' has {rock.name} {versions}, which does not satisfy"
            f" {version_field} '{rock.version}'"
        )
    if len(matching) > 1:
        names = ", ".join(str(p.relative_to(directory)) for p in matching)
        raise ConfigError(
            f"{where}: several rockspecs match in '{directory}' ({names}): pin {version_field}"
        )
    chosen = matching[0]
    return LocalRock(
        directory=str(directory),
        rockspec=str(chosen.relative_to(directory)),
        version=_version_of(chosen, rock.name) or "",
    )


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rock_facts(target: Target, vendored: bool = False) -> tuple[RockFacts, ...]:
    """Each rock's rockspec and content digest (local directory or file), in config order.

    Checked before anything is made, so a wrong path fails first. A rock file may be missing
    when it is vendored (the vendor directory's copy is checked against the lock instead).
    """
    facts = []
    for index, rock in enumerate(target.config.rocks):
        if rock.where.kind == "directory":
            local = find_local_rock(target, index)
            assert local is not None
            facts.append(RockFacts(local, source_digest(Path(local.directory))))
        elif rock.where.kind == "file":
            path = Path(rock.source)
            if vendored and not path.exists():
                facts.append(RockFacts())
                continue
            if not path.is_file():
                where = f"{target.path}: {target.config.rock_field(index, 'source')}"
                raise ConfigError(f"{where}: '{path}' is not a file (a .rock or .src.rock)")
            facts.append(RockFacts(None, file_digest(path)))
        elif rock.where.is_local_server:
            facts.append(RockFacts(None, _server_dir_digest(target, rock.where, index)))
        else:
            facts.append(RockFacts())
    return tuple(facts)


def _server_dir_digest(target: Target, server: RockSource, index: int | None) -> str:
    path = Path(server.host_path or server.text)
    if not path.is_dir():
        field = "luarocks.server" if index is None else target.config.rock_field(index, "source")
        raise ConfigError(f"{target.path}: {field}: '{path}' is not a directory")
    return source_digest(path)


def server_digest(target: Target) -> str:
    """The content digest of a dependency server on this machine; '' for a remote one."""
    server = target.config.luarocks.where
    if server is None or not server.is_local_server:
        return ""
    return _server_dir_digest(target, server, None)
