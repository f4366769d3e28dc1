"""Checks on a committed runtime image -> VerifyReport.

The image is inspected through a throwaway working container: its filesystem is mounted and
read from Python, and the smoke test runs in it. The container is removed afterwards, so
verification never changes the image.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from qjson_tasks import rock_manifest
from qjson_tasks.buildah import Buildah, env_map, image_config
from qjson_tasks.config import Target
from qjson_tasks.errors import ToolError, VerificationError
from qjson_tasks.plan import LABEL_PREFIX
from qjson_tasks.rootfs import resolve_in_root

RUST_EXECUTABLES = frozenset({"cargo", "rustc", "rustup", "rustdoc", "rust-gdb", "rust-lldb"})
RUST_HOMES = frozenset({".cargo", ".rustup"})
CREDENTIAL_FILES = frozenset({".netrc", ".git-credentials"})
CONTRACT_FIELDS = ("User", "Entrypoint", "Cmd", "WorkingDir", "Env", "ExposedPorts")
# Pseudo filesystems are empty in an image; skip them if a runtime ever populates them.
SKIP_DIRS = frozenset({"proc", "sys", "dev"})
MAX_FINDINGS = 20


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    findings: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifyReport:
    image: str
    image_id: str
    target: str
    checks: tuple[CheckResult, ...] = field(default_factory=tuple)
    provenance: Mapping[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def failed(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.passed]

    def table(self) -> str:
        rows = [("check", "result", "detail")]
        for check in self.checks:
            rows.append((check.name, "PASS" if check.passed else "FAIL", check.detail))
        width = [max(len(row[i]) for row in rows) for i in range(2)]
        lines = [f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}" for r in rows]
        for check in self.failed():
            shown = check.findings[:MAX_FINDINGS]
            lines += [f"  {check.name}: {finding}" for finding in shown]
            if len(check.findings) > len(shown):
                lines.append(f"  {check.name}: ... and {len(check.findings) - len(shown)} more")
        return "\n".join(lines)

    def provenance_lines(self) -> str:
        """What exactly is in the image, from its labels: rocks, images, units."""
        lines = ["provenance (image labels):"]
        for key, value in sorted(self.provenance.items()):
            short = key.removeprefix(f"{LABEL_PREFIX}.")
            if short.startswith("rocks."):
                rock = json.loads(value)
                spec = rock.get("rockspec_sha256") or "-"
                source = rock.get("source_sha256") or "unknown (not locked)"
                value = f"{rock.get('version', '?')} rockspec {spec} source {source}"
            lines.append(f"  {short}: {value}")
        return "\n".join(lines) if len(lines) > 1 else ""

    def summary(self) -> str:
        return self.table()

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "image_id": self.image_id,
            "target": self.target,
            "passed": self.passed,
            "checks": [asdict(check) for check in self.checks],
            "provenance": dict(self.provenance),
        }


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
    entries: Sequence[tuple[PurePosixPath, os.stat_result]], image_config: Mapping[str, Any]
) -> CheckResult:
    findings = []
    for path, info in entries:
        if _is_rust_executable(path, info):
            findings.append(f"Rust executable {path}")
        elif stat.S_ISDIR(info.st_mode) and path.name in RUST_HOMES:
            findings.append(f"Rust home directory {path}")
        elif stat.S_ISDIR(info.st_mode) and path.parts[-2:] == ("lib", "rustlib"):
            findings.append(f"Rust standard library {path}")
    env = env_map(image_config.get("Env"))
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
        findings += [problem.message for problem in rock_manifest.check_files(root, rock)]
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
    from qjson_tasks.treemanifest import installed_rocks, runtime_closure

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


def check_native_libraries(root: Path, rocks: Sequence[Any]) -> CheckResult:
    # pyelftools loads slowly; only this check needs it.
    from qjson_tasks import elf_check

    libraries = [
        f.tree_path for rock in rocks for f in rock.files if f.tree_path.name.endswith(".so")
    ]
    findings = []
    for library in libraries:
        findings += elf_check.check_library(root, library)
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
    image_config: Mapping[str, Any],
    base_config: Mapping[str, Any] | None,
    base_ref: str,
    expected_user: str,
) -> CheckResult:
    findings = []
    user = image_config.get("User") or "root"
    if user != expected_user:
        findings.append(f"User is '{user}', the target expects '{expected_user}'")
    if base_config is None:
        findings.append(f"base image {base_ref} is not in local storage; cannot compare")
    else:
        for name in CONTRACT_FIELDS:
            mine, theirs = image_config.get(name) or None, base_config.get(name) or None
            if mine != theirs:
                findings.append(f"{name} is {json.dumps(mine)}, base has {json.dumps(theirs)}")
    detail = (
        f"user {user}; entrypoint, cmd, workdir, env, ports equal {base_ref}"
        if not findings
        else "; ".join(findings[:3])
    )
    return CheckResult("contract", not findings, detail, tuple(findings))


DEFAULT_SMOKE_SCRIPT = Path(__file__).parent / "smoke" / "default.lua"


def default_smoke_script() -> str:
    return DEFAULT_SMOKE_SCRIPT.read_text("utf-8")


def _read_smoke(target: Target, field: str, configured: str) -> str:
    path = (target.path.parent / configured).resolve()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VerificationError(
            f"{target.path}: {field}: cannot read '{path}': {exc.strerror}"
        ) from None


def smoke_script_for(target: Target) -> str:
    configured = target.config.verify.smoke_script
    if not configured:
        return default_smoke_script()
    return _read_smoke(target, "verify.smoke_script", configured)


def smoke_scripts(target: Target) -> list[tuple[str, str]]:
    """(check name, Lua script): the target's smoke test, then each rock's own."""
    scripts = [("smoke", smoke_script_for(target))]
    for index, rock in enumerate(target.config.rocks):
        if rock.smoke_script:
            field = target.config.rock_field(index, "smoke_script")
            scripts.append((f"smoke {rock.name}", _read_smoke(target, field, rock.smoke_script)))
    return scripts


def _lua_error(lines: Sequence[str]) -> str:
    """The error message of a failed Lua run, not the traceback that follows it."""
    for line in lines:
        if "luajit: " in line or line.startswith("lua: "):
            return line.strip()
    return lines[-1].strip() if lines else "no output"


def check_smoke(
    buildah: Buildah, container: str, luajit: str, script: str, user: str, name: str = "smoke"
) -> CheckResult:
    try:
        out = buildah.run(container, [luajit, "-e", script], stream=False)
    except ToolError as exc:
        lines = tuple(line for line in exc.output.splitlines() if line.strip())
        return CheckResult(name, False, f"{luajit} as {user} failed: {_lua_error(lines)}", lines)
    last = out.strip().splitlines()[-1] if out.strip() else "(no output)"
    return CheckResult(name, True, f"{luajit} as {user}: {last}")


# --- the whole verification ----------------------------------------------------------------


def verify_image(image: str, target: Target, buildah: Buildah) -> VerifyReport:
    """Run every check on a local image against a target's expectations."""
    config = target.config
    info = buildah.inspect_image(image)
    if info is None:
        raise VerificationError(f"image '{image}' is not in local storage")
    own_config = image_config(info)
    labels = own_config.get("Labels") or {}
    base_ref = labels.get(f"{LABEL_PREFIX}.base-image", config.runtime.base_image)
    base_info = buildah.inspect_image(base_ref)
    prefix = PurePosixPath(config.runtime.prefix)
    scripts = smoke_scripts(target)
    suffix = uuid.uuid4().hex[:8]

    with ExitStack() as scope:
        ctr = scope.enter_context(buildah.container(image, f"qjt-verify-{suffix}"))
        root = scope.enter_context(buildah.mounted(ctr))
        entries = list(walk_image(root))
        rocks = rock_manifest.find_installed_rocks(root, prefix, config.runtime.lua_version)
        checks = [
            check_no_rust(entries, own_config),
            check_artifacts(root, prefix, config.artifacts, rocks),
            check_rocks(root, prefix, target),
            check_native_libraries(root, rocks),
        ]
        if base_info is not None:
            base_ctr = scope.enter_context(buildah.container(base_ref, f"qjt-verify-base-{suffix}"))
            base_root = scope.enter_context(buildah.mounted(base_ctr))
            checks.append(check_hygiene(added_entries(entries, base_root)))
        else:
            under_prefix = [e for e in entries if prefix in e[0].parents]
            hygiene = check_hygiene(under_prefix)
            detail = f"base not local, checked {len(under_prefix)} paths under {prefix}: "
            checks.append(replace(hygiene, detail=detail + hygiene.detail))
        checks.append(
            check_contract(
                own_config,
                image_config(base_info) if base_info else None,
                base_ref,
                config.runtime.user,
            )
        )
        user = own_config.get("User") or "root"
        for name, script in scripts:
            checks.append(check_smoke(buildah, ctr, config.runtime.luajit, script, user, name))
    return VerifyReport(
        image=image,
        image_id=info.get("FromImageID", ""),
        target=target.name,
        checks=tuple(checks),
        provenance={key: value for key, value in labels.items() if is_provenance(key)},
    )


PROVENANCE = ("rocks.", "unit.", "base-image.id", "builder-image.id", "lock")


def is_provenance(label: str) -> bool:
    return label.removeprefix(f"{LABEL_PREFIX}.").startswith(PROVENANCE) and label.startswith(
        LABEL_PREFIX
    )
