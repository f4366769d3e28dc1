"""Resolve a target's rocks and their dependencies, as luarocks would, into a Lock.

Each rock comes from its source (a local directory or rock file, or a server); every
dependency from the rock's own server, else luarocks.server, else luarocks.org. The newest
version a requirement allows wins, as in luarocks. Dependencies that only the build needs
(`build_dependencies`, and what they depend on) are locked too, marked as build-only.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from qjson_tasks.config.lockfile import Lock, LockedGit, LockedRock
from qjson_tasks.config.model import Rock, Target
from qjson_tasks.config.sources import RockSource, server_source
from qjson_tasks.errors import RockError
from qjson_tasks.host.runner import Runner, ShRunner
from qjson_tasks.luarocks.rockserver import artifact_url, best_version
from qjson_tasks.luarocks.rockspec import Dependency, Rockspec, parse_rockspec, rockspec_in_archive
from qjson_tasks.rocks.fetch import read_url, server_versions
from qjson_tasks.rocks.gitsource import (
    cargo_facts,
    clone_and_pack,
    is_git_source,
    remote_commit,
    source_dir_name,
)
from qjson_tasks.rocks.source import find_local_rock, server_digest, source_digest

DEFAULT_SERVER = "https://luarocks.org"
LUA = "lua"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class _Resolved:
    entry: LockedRock
    spec: Rockspec
    server: RockSource  # where its dependencies are looked up


def _spec(text: bytes, where: str) -> Rockspec:
    try:
        return parse_rockspec(text.decode("utf-8"), where)
    except UnicodeDecodeError:
        raise RockError(f"{where}: not a rockspec (not UTF-8 text)") from None


class Resolver:
    def __init__(self, target: Target, runner: Runner | None = None) -> None:
        self.target = target
        self.runner = runner or ShRunner()  # git, for git-sourced rocks
        self.base = target.path.parent
        self.default_server = target.config.luarocks.where or server_source(DEFAULT_SERVER)
        self.resolved: dict[str, _Resolved] = {}
        self.wanted_by: dict[str, str] = {}

    def shown(self, path: str) -> str:
        """A local path as the lock keeps it: relative to the config's directory."""
        return os.path.relpath(path, self.base)

    def lock(self) -> Lock:
        server_digest(self.target)  # a local luarocks.server must exist: said by its field
        pending: deque[tuple[Dependency, RockSource, str, bool]] = deque()
        for index, rock in enumerate(self.target.config.rocks):
            found = self._configured(index, rock)
            self._add(found, f"{self.target.path.name}")
            pending.extend(self._dependencies_of(found))
        while pending:
            dependency, server, parent, _build = pending.popleft()
            existing = self.resolved.get(dependency.name)
            if existing is not None:
                if not dependency.allows(existing.entry.version):
                    raise RockError(
                        f"{self.target.path}: cannot resolve: {parent} needs {dependency}, but"
                        f" {existing.entry.label} was chosen for"
                        f" {self.wanted_by[dependency.name]}"
                    )
                continue
            found = self._from_server(dependency, server, parent)
            self._add(found, parent)
            pending.extend(self._dependencies_of(found))
        return Lock(target=self.target.name, rocks=self._ordered())

    def _add(self, found: _Resolved, wanted_by: str) -> None:
        self.resolved[found.entry.name] = found
        self.wanted_by[found.entry.name] = wanted_by

    def _dependencies_of(self, found: _Resolved) -> list[tuple[Dependency, RockSource, str, bool]]:
        label = found.entry.label
        runtime = [(d, found.server, label, False) for d in found.spec.dependencies]
        build = [(d, found.server, label, True) for d in found.spec.build_dependencies]
        return [item for item in runtime + build if item[0].name != LUA]

    def _configured(self, index: int, rock: Rock) -> _Resolved:
        field = self.target.config.rock_field(index, "source")
        if rock.where.kind == "directory":
            local = find_local_rock(self.target, index)
            assert local is not None
            spec_path = Path(local.directory) / local.rockspec
            data = spec_path.read_bytes()
            spec = _spec(data, str(spec_path))
            entry = LockedRock(
                name=rock.name,
                version=spec.version,
                kind="directory",
                source=self.shown(local.directory),
                rockspec_sha256=_sha256(data),
                source_sha256=source_digest(Path(local.directory)),
                cargo=cargo_facts(Path(local.directory)),
            )
            return _Resolved(entry, spec, self.default_server)
        if rock.where.kind == "file":
            path = Path(rock.source)
            try:
                data = path.read_bytes()
            except OSError as exc:
                where = f"{self.target.path}: {field}"
                raise RockError(f"{where}: cannot read '{path}': {exc.strerror}") from None
            member, spec_data = rockspec_in_archive(data, str(path))
            spec = _spec(spec_data, f"{path}:{member}")
            if spec.package != rock.name or not Dependency(rock.name, rock.requirement).allows(
                spec.version
            ):
                raise RockError(
                    f"{self.target.path}: {field}: '{path}' holds {spec.package} {spec.version},"
                    f" not {rock.name} '{rock.version}'"
                )
            entry = LockedRock(
                name=rock.name,
                version=spec.version,
                kind="file",
                source=self.shown(str(path)),
                artifact=path.name,
                rockspec_sha256=_sha256(spec_data),
                source_sha256=_sha256(data),
            )
            return _Resolved(entry, spec, self.default_server)
        server = rock.where if rock.where.kind == "server" else self.default_server
        return self._from_server(
            Dependency(rock.name, rock.requirement), server, self.target.path.name
        )

    def _from_server(self, dependency: Dependency, server: RockSource, parent: str) -> _Resolved:
        local = server.is_local_server
        location = server.host_path or server.text
        versions = server_versions(location, dependency.name)
        chosen = best_version(versions, dependency)
        if chosen is None:
            have = ", ".join(v.version for v in versions) or "no version"
            raise RockError(
                f"{self.target.path}: cannot resolve {dependency} (wanted by {parent}):"
                f" {server.text} has {have}"
            )
        arch = chosen.install_arch
        assert arch is not None
        url = artifact_url(location, chosen.name, chosen.version, arch)
        data = read_url(url)
        if arch == "rockspec":
            spec_data, spec_where = data, url
        else:
            member, spec_data = rockspec_in_archive(data, url)
            spec_where = f"{url}:{member}"
        spec = _spec(spec_data, spec_where)
        if arch == "rockspec" and is_git_source(spec.source_url):
            return _Resolved(self._git_rock(spec, spec_data, url, server), spec, server)
        entry = LockedRock(
            name=chosen.name,
            version=chosen.version,
            kind="server",
            source=self.shown(location) if local else server.text,
            artifact=url.rsplit("/", 1)[-1],
            url="" if local else url,
            rockspec_sha256=_sha256(spec_data),
            # A rockspec-only rock's source is fetched by luarocks at build time, from the
            # rockspec's source.url: there is no archive here to hash.
            source_sha256="" if arch == "rockspec" else _sha256(data),
            dependencies=(),
        )
        return _Resolved(entry, spec, server)

    def _git_rock(self, spec: Rockspec, data: bytes, url: str, server: RockSource) -> LockedRock:
        """A rockspec-only rock cloned from git: pinned to the tag's commit and packed into
        a .src.rock here, so its build needs no git server (the lock keeps the rockspec's
        URL: vendoring fetches it again and re-makes the same .src.rock)."""
        label = f"{spec.package} {spec.version}"
        if not spec.source_tag:
            raise RockError(f"{url}: {label}: source.url {spec.source_url} names no tag to pin")
        commit = remote_commit(self.runner, label, spec.source_url, spec.source_tag)
        name = f"{spec.package}-{spec.version}"
        packed = clone_and_pack(self.runner, label, spec, (f"{name}.rockspec", data), commit)
        local = server.is_local_server
        return LockedRock(
            name=spec.package,
            version=spec.version,
            kind="server",
            source=self.shown(server.host_path or server.text) if local else server.text,
            artifact=f"{name}.src.rock",
            url="" if local else url,
            rockspec_sha256=_sha256(data),
            source_sha256=_sha256(packed.packed),
            git=LockedGit(
                url=spec.source_url,
                tag=spec.source_tag,
                commit=commit,
                dir=source_dir_name(spec),
            ),
            cargo=packed.cargo,
        )

    def _needs(self, name: str, build: bool) -> list[str]:
        spec = self.resolved[name].spec
        deps = spec.build_dependencies if build else spec.dependencies
        return [d.name for d in deps if d.name != LUA]

    def _ordered(self) -> tuple[LockedRock, ...]:
        """Dependencies before the rocks needing them; roles from the runtime closure."""
        runtime: set[str] = set()
        stack = [rock.name for rock in self.target.config.rocks]
        while stack:
            name = stack.pop()
            if name not in runtime:
                runtime.add(name)
                stack.extend(self._needs(name, build=False))
        order: list[str] = []

        def visit(name: str, seen: frozenset[str]) -> None:
            if name in order or name in seen:
                return
            for dep in self._needs(name, build=True) + self._needs(name, build=False):
                visit(dep, seen | {name})
            order.append(name)

        for rock in self.target.config.rocks:
            visit(rock.name, frozenset())
        return tuple(
            self.resolved[name].entry.model_copy(
                update={
                    "role": "runtime" if name in runtime else "build",
                    "dependencies": tuple(self._needs(name, build=False)),
                }
            )
            for name in order
        )


def resolve(target: Target, runner: Runner | None = None) -> Lock:
    return Resolver(target, runner).lock()
