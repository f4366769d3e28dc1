"""The checks that read a mounted image's filesystem and config, each -> CheckResult."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from qjson_tasks.config.model import Target
from qjson_tasks.config.platforms import by_architecture
from qjson_tasks.host.answers import ImageInfo
from qjson_tasks.verify import rock_files
from qjson_tasks.verify.report import CheckResult
from qjson_tasks.verify.rootfs import resolve_in_root

RUST_EXECUTABLES = frozenset({"cargo", "rustc", "rustup", "rustdoc", "rust-gdb", "rust-lldb"})
RUST_HOMES = frozenset({".cargo", ".rustup"})
CREDENTIAL_FILES = frozenset({".netrc", ".git-credentials"})
CONTRACT_FIELDS = ("User", "Entrypoint", "Cmd", "WorkingDir", "Env", "ExposedPorts")
# Every check verify_image runs, in its report's order (a target's own smoke scripts add
# `smoke NAME`, [verify.gateway] adds `gateway`); the planted-fault tests read it.
CHECKS = (
    "no-rust",
    "artifacts",
    "rocks",
    "native-libs",
    "arch",
    "hygiene",
    "sbom",
    "contract",
    "smoke",
)
# Pseudo filesystems are empty in an image; skip them if a runtime ever populates them.
SKIP_DIRS = frozenset({"proc", "sys", "dev"})


# --- walking an image's filesystem ---------------------------------------------------------


def walk_image(root: Path) -> Iterator[tuple[PurePosixPath, os.stat_result]]:
    """Every path in the image (without following symlinks) with its lstat."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in dirnames + filenames:
            host = here / name
            try:
                info = host.lstat()
            except OSError:
                continue
            yield PurePosixPath("/") / host.relative_to(root).as_posix(), info


def _is_rust_executable(path: PurePosixPath, info: os.stat_result) -> bool:
    name = path.name
    if name not in RUST_EXECUTABLES and not name.startswith("cargo-"):
        return False
    if stat.S_ISLNK(info.st_mode):
        return True
    return stat.S_ISREG(info.st_mode) and bool(info.st_mode & 0o111)


def check_no_rust(
    entries: Sequence[tuple[PurePosixPath, os.stat_result]], env: Mapping[str, str]
) -> CheckResult:
    findings = []
    for path, info in entries:
        if _is_rust_executable(path, info):
            findings.append(f"Rust executable {path}")
        elif stat.S_ISDIR(info.st_mode) and path.name in RUST_HOMES:
            findings.append(f"Rust home directory {path}")
        elif stat.S_ISDIR(info.st_mode) and path.parts[-2:] == ("lib", "rustlib"):
            findings.append(f"Rust standard library {path}")
    for name in ("CARGO_HOME", "RUSTUP_HOME"):
        if name in env:
            findings.append(f"env {name}={env[name]}")
    for entry in env.get("PATH", "").split(":"):
        if entry.rstrip("/").endswith(".cargo/bin"):
            findings.append(f"env PATH contains {entry}")
    detail = f"scanned {len(entries)} paths and the image env"
    if findings:
        detail = f"{len(findings)} Rust toolchain traces: " + "; ".join(findings[:3])
    return CheckResult("no-rust", not findings, detail, tuple(findings))


def check_artifacts(
    root: Path, prefix: PurePosixPath, required: Sequence[str], rocks: Sequence[Any]
) -> CheckResult:
    findings = []
    for relative in required:
        path = prefix / relative
        if resolve_in_root(root, path) is None:
            findings.append(f"missing {path}")
    checked = 0
    for rock in rocks:
        checked += len(rock.files)
        findings += [problem.message for problem in rock_files.check_files(root, rock)]
    if not rocks:
        findings.append(f"no rock_manifest under {prefix}/lib/luarocks")
    names = ", ".join(f"{r.name} {r.version}" for r in rocks) or "no rocks"
    detail = (
        f"{len(required)} required files and {checked} rock_manifest entries ({names})"
        if not findings
        else "; ".join(findings[:3])
    )
    return CheckResult("artifacts", not findings, detail, tuple(findings))


def check_rocks(root: Path, prefix: PurePosixPath, target: Target) -> CheckResult:
    """Every rock of the target is installed in an allowed version, and nothing else is but
    what they need at runtime (a build-only dependency left in the tree fails)."""
    from qjson_tasks.errors import RockError
    from qjson_tasks.luarocks.treemanifest import installed_rocks, runtime_closure

    config = target.config
    manifest = prefix / "lib" / "luarocks" / f"rocks-{config.runtime.lua_version}" / "manifest"
    host = resolve_in_root(root, manifest)
    if host is None or not host.is_file():
        return CheckResult("rocks", False, f"no luarocks manifest at {manifest}")
    text = host.read_text(encoding="utf-8", errors="replace")
    findings = []
    try:
        installed = installed_rocks(text, str(manifest))
        present = [rock.name for rock in config.rocks if rock.name in installed]
        kept, extra = runtime_closure(text, present, str(manifest))
    except RockError as exc:
        return CheckResult("rocks", False, str(exc))
    for rock in config.rocks:
        version = installed.get(rock.name)
        if version is None:
            findings.append(f"{rock.name} is not installed")
            continue
        if not rock.requirement.allows_text(version):
            findings.append(f"{rock.name} {version} does not satisfy '{rock.version}'")
    findings += [
        f"{name} {version} is installed but no rock needs it at runtime (a build-only dependency?)"
        for name, version in sorted(extra.items())
    ]
    names = ", ".join(f"{name} {version}" for name, version in sorted(kept.items()))
    detail = (
        f"{len(kept)} rocks, all needed at runtime: {names}"
        if not findings
        else "; ".join(findings[:3])
    )
    return CheckResult("rocks", not findings, detail, tuple(findings))


def check_native_libraries(
    root: Path, rocks: Sequence[Any], image: ImageInfo | None = None
) -> CheckResult:
    # pyelftools loads slowly; only this check and `arch` need it.
    from qjson_tasks.verify import elf as elf_check

    libraries = [
        f.tree_path for rock in rocks for f in rock.files if f.tree_path.name.endswith(".so")
    ]
    platform = by_architecture(image.architecture) if image is not None else None
    machine = (platform.elf_machine, platform.elf_class) if platform else None
    findings = []
    for library in libraries:
        findings += elf_check.check_library(root, library, machine)
    libc = elf_check.detect_libc(root)
    if not libraries:
        findings.append("the rocks install no native library")
    detail = (
        f"{len(libraries)} libraries resolve against the image's {libc.kind}"
        f"{' ' + libc.version if libc.version else ''}"
        if not findings
        else "; ".join(findings[:3])
    )
    return CheckResult("native-libs", not findings, detail, tuple(findings))


def check_arch(
    root: Path, added: Sequence[tuple[PurePosixPath, os.stat_result]], image: ImageInfo
) -> CheckResult:
    """Every ELF file the image added over its base is built for the image's architecture
    (e_machine and class against the config's Architecture): an amd64 qjson.so copied into
    an arm64 image loads nowhere."""
    from qjson_tasks.errors import VerificationError
    from qjson_tasks.verify.elf import describe_machine, read_elf

    arch = f"{image.os or '?'}/{image.architecture or '?'}"
    platform = by_architecture(image.architecture)
    if platform is None or not platform.elf_machine:
        # Not a failure: such an image was verified before this check existed, and its
        # smoke check still loads qjson.so there.
        detail = f"not checked: the image's architecture {arch} is not one this check knows"
        return CheckResult("arch", True, detail)
    wanted = describe_machine(platform.elf_machine, platform.elf_class)
    findings = []
    count = 0
    for path, info in added:
        if not stat.S_ISREG(info.st_mode):
            continue
        try:
            elf = read_elf(root / str(path).lstrip("/"))
        except (OSError, VerificationError):
            continue  # not a file any loader would take (hygiene names stray objects)
        if elf is None:
            continue
        count += 1
        if (elf.machine, elf.elf_class) != (platform.elf_machine, platform.elf_class):
            found = describe_machine(elf.machine, elf.elf_class)
            findings.append(f"{path} is {found}, the image is {arch} ({wanted})")
    detail = (
        f"{count} ELF files added, all {wanted} as the image's {arch}"
        if not findings
        else "; ".join(findings[:3])
    )
    return CheckResult("arch", not findings, detail, tuple(findings))


def added_entries(
    image: Sequence[tuple[PurePosixPath, os.stat_result]], base_root: Path
) -> list[tuple[PurePosixPath, os.stat_result]]:
    """Paths the image has that its base lacks or has with other content or metadata."""
    added = []
    for path, info in image:
        try:
            before = (base_root / str(path).lstrip("/")).lstat()
        except OSError:
            added.append((path, info))
            continue
        if stat.S_ISDIR(info.st_mode) and stat.S_ISDIR(before.st_mode):
            if (info.st_mode, info.st_uid) == (before.st_mode, before.st_uid):
                continue
        elif (info.st_mode, info.st_uid, info.st_size, info.st_mtime) == (
            before.st_mode,
            before.st_uid,
            before.st_size,
            before.st_mtime,
        ):
            continue
        added.append((path, info))
    return added


def _leftover(path: PurePosixPath, info: os.stat_result) -> str | None:
    name = path.name
    if stat.S_ISDIR(info.st_mode) and name == "target":
        return "build directory"
    if name.endswith((".o", ".rlib", ".rmeta", ".src.rock")):
        return "build leftover"
    if stat.S_ISDIR(info.st_mode) and path.parts[-2:] == (".cargo", "registry"):
        return "cargo registry"
    if name in CREDENTIAL_FILES or (
        path.parent.name == ".cargo" and name.startswith("credentials")
    ):
        return "credential file"
    return None


def check_hygiene(added: Sequence[tuple[PurePosixPath, os.stat_result]]) -> CheckResult:
    findings = []
    for path, info in added:
        if info.st_uid != 0:
            findings.append(f"{path} owned by uid {info.st_uid}, not root")
        if not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o002:
            findings.append(f"{path} is world-writable ({stat.filemode(info.st_mode)})")
        if not stat.S_ISDIR(info.st_mode) and info.st_mode & (stat.S_ISUID | stat.S_ISGID):
            findings.append(f"{path} is setuid/setgid ({stat.filemode(info.st_mode)})")
        kind = _leftover(path, info)
        if kind:
            findings.append(f"{kind} {path}")
    detail = f"{len(added)} paths added over the base" if not findings else "; ".join(findings[:3])
    return CheckResult("hygiene", not findings, detail, tuple(findings))


def check_contract(
    image: ImageInfo, base: ImageInfo | None, base_ref: str, expected_user: str
) -> CheckResult:
    findings = []
    user = image.user or "root"
    if user != expected_user:
        findings.append(f"User is '{user}', the target expects '{expected_user}'")
    if base is None:
        findings.append(f"base image {base_ref} is not in local storage; cannot compare")
    else:
        for name in CONTRACT_FIELDS:
            mine, theirs = image.config.get(name) or None, base.config.get(name) or None
            if mine != theirs:
                findings.append(f"{name} is {json.dumps(mine)}, base has {json.dumps(theirs)}")
    detail = (
        f"user {user}; entrypoint, cmd, workdir, env, ports equal {base_ref}"
        if not findings
        else "; ".join(findings[:3])
    )
    return CheckResult("contract", not findings, detail, tuple(findings))


# --- the whole verification ----------------------------------------------------------------
