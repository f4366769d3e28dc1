"""`invoke lock` and `invoke vendor`, and the lock a build uses."""

from __future__ import annotations

from pathlib import Path

from qjson_tasks.app.tools import Tools, log, session_for
from qjson_tasks.build.builder import write_vendor_manifest
from qjson_tasks.build.session import Session
from qjson_tasks.config import lockfile
from qjson_tasks.config.lockfile import Lock
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError
from qjson_tasks.host.runner import Runner


def lock_for_build(target: Target, update: bool, vendor: str | None) -> Lock | None:
    """The lock a build uses: the target's (checked against its config), a new one with
    --update-lock, or none."""
    lock = lock_target(target) if update else lockfile.checked_lock(target)
    if vendor is not None and lock is None:
        raise ConfigError(
            f"--vendor: target '{target.name}' has no lock ({lockfile.lock_path(target)}):"
            f" run `invoke lock --target {target.name}` and `invoke vendor` first"
        )
    if vendor is not None and not Path(vendor).is_dir():
        raise ConfigError(f"--vendor: '{vendor}' is not a directory")
    return lock


def lock_target(target: Target, runner: Runner | None = None) -> Lock:
    """Resolve every rock and write config/NAME.lock (git, for git-sourced rocks, through
    `runner`, else the default one)."""
    from qjson_tasks.rocks.resolve import resolve  # only here: keeps every other task quick

    lock = resolve(target, runner)
    path = lockfile.write_lock(target, lock)
    log(f"    wrote {path}: " + ", ".join(f"{r.label} ({r.role})" for r in lock.rocks))
    return lock


def vendor_target(target: Target, tools: Tools, directory: Path) -> list[str]:
    """Every locked rock file into directory, hash-checked, plus a luarocks manifest
    (`luarocks-admin make-manifest`), so it can be the only rock server of an offline build;
    and the crates of Rust rocks under directory/crates."""
    from qjson_tasks.rocks.vendor import fetch_locked

    lock = lockfile.checked_lock(target)
    if lock is None:
        raise ConfigError(
            f"{lockfile.lock_path(target)}: no lock for target '{target.name}': run"
            f" `invoke lock --target {target.name}` first"
        )
    directory.mkdir(parents=True, exist_ok=True)
    names = fetch_locked(target, lock, directory, runner=tools.runner)
    session = session_for(target, tools)
    names += write_vendor_manifest(session, directory)
    return names + vendor_rock_crates(target, session, lock, directory)


def vendor_rock_crates(target: Target, session: Session, lock: Lock, directory: Path) -> list[str]:
    """DIR/crates: `cargo vendor --locked` of every Rust rock in the builder, each crate then
    checked against the lock."""
    from qjson_tasks.build.cratevendor import vendor_crates
    from qjson_tasks.rocks.crates import check_vendored_crates, rust_rocks

    rocks = rust_rocks(lock)
    if not rocks:
        return []
    crates = vendor_crates(session, directory, rocks)
    check_vendored_crates(target, lock, crates)
    return [crates.name]
