"""Find the rockspec in a local rock directory (at its root or under rockspec/)."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from pathlib import Path

from qjson_tasks.config import Target
from qjson_tasks.errors import ConfigError
from qjson_tasks.plan import LocalRock
from qjson_tasks.versions import Version

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


def find_local_rock(target: Target) -> LocalRock | None:
    """The local rock a target builds from, or None when it installs from a server."""
    rock = target.config.rock
    if rock.source_kind != "directory":
        return None
    where = f"{target.path}: rock.source"
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
    matching = []
    for path in mine:
        try:
            if requirement.allows(Version.parse(_version_of(path, rock.name) or "")):
                matching.append(path)
        except ValueError:
            continue
    if not matching:
        versions = ", ".join(_version_of(p, rock.name) for p in mine)
        raise ConfigError(
            f"{where}: '{directory}' has {rock.name} {versions}, which does not satisfy"
            f" rock.version '{rock.version}'"
        )
    if len(matching) > 1:
        names = ", ".join(str(p.relative_to(directory)) for p in matching)
        raise ConfigError(
            f"{where}: several rockspecs match in '{directory}' ({names}): pin rock.version"
        )
    chosen = matching[0]
    return LocalRock(
        directory=str(directory),
        rockspec=str(chosen.relative_to(directory)),
        version=_version_of(chosen, rock.name) or "",
    )
