"""Check that a shared library inside an image's filesystem can load there."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from elftools.common.exceptions import ELFError
from elftools.construct import ConstructError
from elftools.elf.dynamic import DynamicSection, DynamicSegment, DynamicTag
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection

from qjson_tasks.errors import VerificationError
from qjson_tasks.verify.rootfs import image_path, resolve_in_root

_GLIBC_VERSION = re.compile(r"GLIBC_(\d+)\.(\d+)(?:\.(\d+))?")
_TRIPLET = re.compile(r"[a-z0-9_]+-linux-(?:gnu|musl)\w*")
_STANDARD_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64")
_LIBGCC_HINT = " (libgcc_s.so.1 comes from libgcc: on Alpine `apk add libgcc`)"


@dataclass(frozen=True)
class ElfInfo:
    """What the dynamic loader reads from an ELF file."""

    machine: str  # e_machine, e.g. "EM_X86_64"
    elf_class: int  # 32 or 64
    little_endian: bool
    needed: tuple[str, ...]
    runpath: tuple[str, ...]
    rpath: tuple[str, ...]
    soname: str | None
    interpreter: str | None
    glibc_versions_needed: tuple[str, ...]
    versions_defined: tuple[str, ...]  # from .gnu.version_d, e.g. libc's GLIBC_2.36

    @property
    def max_glibc_needed(self) -> str | None:
        """The newest `GLIBC_x.y[.z]` this file needs, or None."""
        return max_glibc_version(self.glibc_versions_needed)

    def compatible_with(self, other: ElfInfo) -> bool:
        """Same machine, class and byte order: the loader accepts one for the other."""
        return (self.machine, self.elf_class, self.little_endian) == (
            other.machine,
            other.elf_class,
            other.little_endian,
        )

    @property
    def is_glibc_built(self) -> bool:
        return "libc.so.6" in self.needed or bool(self.glibc_versions_needed)

    @property
    def is_musl_built(self) -> bool:
        # Alpine's musl has the soname libc.musl-<arch>.so.1, upstream's libc.so.
        return any(n == "libc.so" or n.startswith("libc.musl-") for n in self.needed) or (
            self.interpreter is not None and "ld-musl-" in self.interpreter
        )


@dataclass(frozen=True)
class LibcInfo:
    """The image's C library; `path` is in-image (libc.so.6 or musl's loader)."""

    kind: Literal["glibc", "musl", "unknown"]
    version: str | None = None  # "2.36" for glibc; musl's version isn't read
    path: PurePosixPath | None = None


def glibc_version_key(version: str) -> tuple[int, ...]:
    """Numeric sort key of `GLIBC_2.34` (or `2.34`), so 2.34 > 2.4."""
    match = _GLIBC_VERSION.fullmatch(f"GLIBC_{version.removeprefix('GLIBC_')}")
    if match is None:
        raise ValueError(f"not a glibc version: {version}")
    return tuple(int(part) for part in match.groups() if part is not None)


def max_glibc_version(versions: Iterable[str]) -> str | None:
    """The newest of some `GLIBC_x.y[.z]` names, or None if there are none."""
    return max(versions, key=glibc_version_key, default=None)


def _is_glibc_version(name: str) -> bool:
    return _GLIBC_VERSION.fullmatch(name) is not None


def _dynamic_tags(elf: ELFFile) -> list[DynamicTag]:
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            return list(section.iter_tags())
    # A file stripped of section headers still has its PT_DYNAMIC segment.
    for segment in elf.iter_segments():
        if isinstance(segment, DynamicSegment):
            return list(segment.iter_tags())
    return []


def _interpreter(elf: ELFFile) -> str | None:
    for segment in elf.iter_segments():
        if segment["p_type"] == "PT_INTERP":
            return segment.get_interp_name()
    return None


def _versions_needed(elf: ELFFile) -> tuple[str, ...]:
    names: list[str] = []
    for section in elf.iter_sections():
        if isinstance(section, GNUVerNeedSection):
            for _verneed, auxes in section.iter_versions():
                names.extend(aux.name for aux in auxes)
    return tuple(names)


def _versions_defined(elf: ELFFile) -> tuple[str, ...]:
    names: list[str] = []
    for section in elf.iter_sections():
        if isinstance(section, GNUVerDefSection):
            for verdef, auxes in section.iter_versions():
                if not verdef["vd_flags"] & 1:  # VER_FLG_BASE names the file, not a version
                    names.extend(aux.name for aux in auxes)
    return tuple(dict.fromkeys(names))


def _split_paths(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(part for value in values for part in value.split(":") if part)


def _elf_info(elf: ELFFile) -> ElfInfo:
    tags = _dynamic_tags(elf)

    def values(tag: str, attribute: str) -> list[str]:
        return [getattr(t, attribute) for t in tags if t.entry.d_tag == tag]

    sonames = values("DT_SONAME", "soname")
    return ElfInfo(
        machine=elf["e_machine"],
        elf_class=elf.elfclass,
        little_endian=elf.little_endian,
        needed=tuple(values("DT_NEEDED", "needed")),
        runpath=_split_paths(values("DT_RUNPATH", "runpath")),
        rpath=_split_paths(values("DT_RPATH", "rpath")),
        soname=sonames[0] if sonames else None,
        interpreter=_interpreter(elf),
        glibc_versions_needed=tuple(n for n in _versions_needed(elf) if _is_glibc_version(n)),
        versions_defined=_versions_defined(elf),
    )


def read_elf(path: Path) -> ElfInfo | None:
    """What the loader sees of the (host) file `path`; None if it isn't ELF."""
    with path.open("rb") as stream:
        if stream.read(4) != b"\x7fELF":
            return None
        stream.seek(0)
        try:
            return _elf_info(ELFFile(stream))
        except (ELFError, ConstructError, ValueError, KeyError, UnicodeDecodeError) as error:
            raise VerificationError(f"{path}: malformed ELF file: {error}") from error


def _read_elf_in_root(root: Path, path: PurePosixPath) -> ElfInfo | None:
    host = resolve_in_root(root, path)
    if host is None or not host.is_file():
        return None
    try:
        return read_elf(host)
    except VerificationError:
        return None  # a broken candidate can't be loaded; others may still match


def _glob_in_root(root: Path, pattern: PurePosixPath) -> list[PurePosixPath]:
    """Files matching `pattern`, with wildcards in its last component only."""
    directory = resolve_in_root(root, pattern.parent)
    if directory is None or not directory.is_dir():
        return []
    names = sorted(fnmatch.filter((c.name for c in directory.iterdir()), pattern.name))
    return [pattern.parent / name for name in names]


def _conf_dirs(root: Path, conf: PurePosixPath, seen: set[PurePosixPath]) -> list[PurePosixPath]:
    """Directories an ld.so.conf-style file lists, following `include` lines."""
    host = resolve_in_root(root, conf)
    if conf in seen or host is None or not host.is_file():
        return []
    seen.add(conf)
    dirs: list[PurePosixPath] = []
    for raw in host.read_text(encoding="utf-8", errors="replace").splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] == "hwcap":
            continue
        if words[0] == "include":
            for pattern in words[1:]:
                for included in _glob_in_root(root, conf.parent / pattern):
                    dirs.extend(_conf_dirs(root, included, seen))
        elif words[0].startswith("/"):
            dirs.append(PurePosixPath(words[0]))
    return dirs


def _musl_path_dirs(root: Path) -> list[PurePosixPath]:
    """Directories musl's loader reads from /etc/ld-musl-<arch>.path."""
    dirs: list[PurePosixPath] = []
    for path_file in _glob_in_root(root, PurePosixPath("/etc/ld-musl-*.path")):
        host = resolve_in_root(root, path_file)
        if host is not None and host.is_file():
            text = host.read_text(encoding="utf-8", errors="replace")
            dirs.extend(PurePosixPath(d) for d in re.split(r"[:\n]", text) if d.startswith("/"))
    return dirs


def _triplet_dirs(root: Path) -> list[PurePosixPath]:
    dirs = []
    for parent in ("/lib", "/usr/lib"):
        host = resolve_in_root(root, parent)
        if host is not None and host.is_dir():
            triplets = sorted(c.name for c in host.iterdir() if _TRIPLET.fullmatch(c.name))
            dirs.extend(PurePosixPath(parent, name) for name in triplets)
    return dirs


def library_dirs(root: Path) -> list[PurePosixPath]:
    """Directories the image's dynamic loader searches, that exist in the image."""
    seen: set[PurePosixPath] = set()
    configured = _conf_dirs(root, PurePosixPath("/etc/ld.so.conf"), seen)
    for conf in _glob_in_root(root, PurePosixPath("/etc/ld.so.conf.d/*.conf")):
        configured.extend(_conf_dirs(root, conf, seen))
    candidates = [
        *configured,
        *_musl_path_dirs(root),
        *_triplet_dirs(root),
        *(PurePosixPath(d) for d in _STANDARD_DIRS),
        PurePosixPath("/usr/local/lib"),
    ]
    unique = dict.fromkeys(candidates)
    return [d for d in unique if _is_dir(root, d)]


def _is_dir(root: Path, path: PurePosixPath) -> bool:
    host = resolve_in_root(root, path)
    return host is not None and host.is_dir()


def _expand_origin(entry: str, origin: PurePosixPath) -> PurePosixPath | None:
    expanded = entry.replace("${ORIGIN}", str(origin)).replace("$ORIGIN", str(origin))
    # Relative entries are relative to the process's working directory: unknowable here.
    return PurePosixPath(expanded) if expanded.startswith("/") else None


def _search_dirs(
    lib_path: PurePosixPath, info: ElfInfo, dirs: Iterable[PurePosixPath]
) -> list[PurePosixPath]:
    # glibc ignores DT_RPATH when DT_RUNPATH is present.
    entries = info.runpath if info.runpath else info.rpath
    expanded = (_expand_origin(entry, lib_path.parent) for entry in entries)
    return [*(d for d in expanded if d is not None), *dirs]


def _find_library(
    root: Path, name: str, search: Iterable[PurePosixPath], dependent: ElfInfo
) -> PurePosixPath | None:
    for directory in search:
        candidate = _read_elf_in_root(root, directory / name)
        if candidate is not None and candidate.compatible_with(dependent):
            host_dir = resolve_in_root(root, directory)
            return image_path(root, host_dir) / name if host_dir else directory / name
    return None


def resolve_needed(
    root: Path, lib_path: PurePosixPath, info: ElfInfo, dirs: Iterable[PurePosixPath]
) -> dict[str, PurePosixPath | None]:
    """Where each DT_NEEDED of the image's `lib_path` resolves, None if nowhere.

    The path returned is the directory's symlink-free in-image path plus the
    needed name, as the loader opens it.
    """
    search = _search_dirs(PurePosixPath(lib_path), info, dirs)
    return {name: _locate(root, name, search, info) for name in info.needed}


def _locate(
    root: Path, name: str, search: list[PurePosixPath], dependent: ElfInfo
) -> PurePosixPath | None:
    if "/" not in name:
        return _find_library(root, name, search, dependent)
    # A needed name with a slash is opened as a path, relative ones from the cwd.
    path = PurePosixPath(name)
    return _find_library(root, path.name, [path.parent], dependent) if path.is_absolute() else None


def _read_libc(root: Path, path: PurePosixPath) -> LibcInfo:
    info = _read_elf_in_root(root, path)
    defined = info.versions_defined if info else ()
    newest = max_glibc_version(v for v in defined if _is_glibc_version(v))
    return LibcInfo("glibc", newest.removeprefix("GLIBC_") if newest else None, path)


def detect_libc(root: Path) -> LibcInfo:
    """Which C library the image has: glibc (with its version), musl or unknown."""
    # musl first: Alpine's glibc-compat packages can add a libc.so.6 to a musl image.
    musl = _glob_in_root(root, PurePosixPath("/lib/ld-musl-*.so.1"))
    if musl:
        return LibcInfo("musl", None, musl[0])
    for directory in library_dirs(root):
        if resolve_in_root(root, directory / "libc.so.6") is not None:
            return _read_libc(root, directory / "libc.so.6")
    return LibcInfo("unknown")


def _missing_message(lib: PurePosixPath, name: str) -> str:
    message = f"{lib}: needs {name}, which is missing from the image"
    return message + _LIBGCC_HINT if name == "libgcc_s.so.1" else message


def _libc_mismatch(lib: PurePosixPath, info: ElfInfo, libc: LibcInfo) -> str | None:
    if libc.kind == "musl" and info.is_glibc_built:
        return f"{lib}: glibc-built library in a musl image"
    if libc.kind == "glibc" and info.is_musl_built:
        return f"{lib}: musl-built library in a glibc image"
    return None


def _glibc_too_old(
    root: Path, lib: PurePosixPath, info: ElfInfo, libc: LibcInfo, libc_path: PurePosixPath | None
) -> str | None:
    newest = info.max_glibc_needed
    if newest is None or libc.kind != "glibc":
        return None
    # Prefer the libc this library resolves to: multiarch images can hold several.
    version = (_read_libc(root, libc_path).version if libc_path else None) or libc.version
    if version is None or glibc_version_key(newest) <= glibc_version_key(version):
        return None
    return (
        f"{lib}: needs {newest} but the image has glibc {version}: "
        "build it with a builder on the runtime's release"
    )


MACHINE_NAMES = {
    "EM_X86_64": "x86-64",
    "EM_AARCH64": "AArch64",
    "EM_ARM": "ARM",
    "EM_386": "Intel 80386",
    "EM_PPC64": "PowerPC64",
    "EM_S390": "S/390",
}


def describe_machine(machine: str, elf_class: int) -> str:
    """`AArch64, 64-bit` for e_machine EM_AARCH64 and ELFCLASS64."""
    return f"{MACHINE_NAMES.get(machine, machine)}, {elf_class}-bit"


def check_library(
    root: Path, lib_path: str | PurePosixPath, machine: tuple[str, int] | None = None
) -> list[str]:
    """Why the image's library at `lib_path` would fail to load there (empty if fine).

    A library of another machine than `machine` (e_machine, class) is left to the `arch`
    check: its needed libraries are the image's own architecture's, so it would otherwise
    be reported a second time, as needing libraries the image lacks."""
    lib = PurePosixPath(lib_path)
    host = resolve_in_root(root, lib)
    if host is None or not host.is_file():
        return [f"{lib}: not found in the image"]
    info = read_elf(host)
    if info is None:
        return [f"{lib}: not an ELF file"]
    if machine is not None and (info.machine, info.elf_class) != machine:
        return []
    libc = detect_libc(root)
    resolved = resolve_needed(root, lib, info, library_dirs(root))
    problems = []
    mismatch = _libc_mismatch(lib, info, libc)
    if mismatch:
        problems.append(mismatch)
    for name, where in resolved.items():
        # A foreign libc is reported once above, not again as missing.
        if where is None and not (mismatch and name.startswith("libc.")):
            problems.append(_missing_message(lib, name))
    too_old = _glibc_too_old(root, lib, info, libc, resolved.get("libc.so.6"))
    if too_old:
        problems.append(too_old)
    return problems
