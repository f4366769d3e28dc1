#!/usr/bin/env python3
"""Pack a rock directory into a reproducible ``<package>-<version>.src.rock``.

A ``.src.rock`` is a zip holding the rockspec and the source archive named by
the basename of the rockspec's ``source.url``; luarocks finds that archive in
the unpacked ``.src.rock`` and never fetches the URL. Here the archive is a
``.tar.gz`` of the rock directory's files under the ``source.dir`` directory
name. Timestamps, ordering, owners and modes are fixed, so packing the same
files gives the same bytes on every run. (``luarocks pack <rockspec>`` is not
used: it tries to download ``source.url``, a placeholder here, and would stamp
the current time into the zip.)

Usage: ``python rocks/pack.py rocks/cdemo rocks/cdemo/`` (rock dir, output dir).

The rockspec is read with simple regexes; it works for this repository's
rockspecs (string literals for ``package``, ``version``, ``source.url`` and
``source.dir``; no nested tables inside ``source``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# 2000-01-01T00:00:00Z: fixed for every tar and zip member (zip cannot go before 1980).
FIXED_EPOCH = 946_684_800
FIXED_ZIP_DATE = (2000, 1, 1, 0, 0, 0)

# Archive suffixes luarocks strips from a URL basename to guess source.dir.
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")

# Names never packed: build outputs, VCS/editor clutter and hidden files (.gitignore).
_EXCLUDED_DIRS = frozenset({".git", "__pycache__", "target", ".pytest_cache"})
_EXCLUDED_SUFFIXES = (".rock", ".pyc", ".o", ".so", "~")


@dataclass(frozen=True)
class RockSpec:
    """The rockspec fields the packer needs."""

    path: Path
    package: str
    version: str
    url: str
    dir: str

    @property
    def archive_name(self) -> str:
        return PurePosixPath(self.url).name

    @property
    def rock_name(self) -> str:
        return f"{self.package}-{self.version}.src.rock"

    @property
    def rockspec_name(self) -> str:
        return f"{self.package}-{self.version}.rockspec"


def _string_field(text: str, field: str, where: str) -> str:
    match = re.search(rf'^\s*{field}\s*=\s*"([^"\n]*)"', text, re.MULTILINE)
    if match is None:
        raise ValueError(f'{where}: no {field} = "..." found')
    return match.group(1)


def _strip_lua_comments(text: str) -> str:
    return re.sub(r"--(?!\[\[)[^\n]*", "", text)


def find_rockspec(rock_dir: Path) -> Path:
    """Return the single ``*.rockspec`` in ``rock_dir`` (top level first, then below)."""
    found = sorted(rock_dir.glob("*.rockspec")) or sorted(rock_dir.rglob("*.rockspec"))
    if len(found) != 1:
        names = ", ".join(str(p) for p in found) or "none"
        raise ValueError(f"{rock_dir}: expected exactly one .rockspec, found {names}")
    return found[0]


def read_rockspec(path: Path) -> RockSpec:
    """Read package, version, source.url and source.dir from a rockspec."""
    text = _strip_lua_comments(path.read_text(encoding="utf-8"))
    source = re.search(r"^\s*source\s*=\s*\{(.*?)\}", text, re.MULTILINE | re.DOTALL)
    if source is None:
        raise ValueError(f"{path}: no source = {{ ... }} table found")
    url = _string_field(source.group(1), "url", f"{path} source")
    if "://" not in url or url.startswith("file://"):
        raise ValueError(f"{path}: source.url must be a remote URL naming an archive, got {url}")
    try:
        src_dir = _string_field(source.group(1), "dir", f"{path} source")
    except ValueError:
        src_dir = PurePosixPath(url).name
        for suffix in _ARCHIVE_SUFFIXES:
            if src_dir.endswith(suffix):
                src_dir = src_dir[: -len(suffix)]
                break
    spec = RockSpec(
        path=path,
        package=_string_field(text, "package", str(path)),
        version=_string_field(text, "version", str(path)),
        url=url,
        dir=src_dir,
    )
    if not spec.archive_name.endswith((".tar.gz", ".tgz")):
        raise ValueError(f"{path}: source.url must end in .tar.gz or .tgz, got {url}")
    if "/" in spec.dir or spec.dir in ("", ".", ".."):
        raise ValueError(f"{path}: source.dir must be a single directory name, got {spec.dir!r}")
    return spec


def collect_files(rock_dir: Path) -> list[PurePosixPath]:
    """Relative paths of the files to pack, sorted, excluding build outputs."""
    files: list[PurePosixPath] = []
    for path in rock_dir.rglob("*"):
        rel = PurePosixPath(path.relative_to(rock_dir).as_posix())
        if any(part in _EXCLUDED_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if path.is_symlink():
            raise ValueError(f"{path}: symlinks are not packed")
        if path.is_file() and not rel.name.endswith(_EXCLUDED_SUFFIXES):
            files.append(rel)
    return sorted(files, key=str)


def _tar_info(name: str, *, size: int = 0, mode: int, is_dir: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.size = size
    info.mode = mode
    info.mtime = FIXED_EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def make_source_archive(rock_dir: Path, top: str) -> bytes:
    """A reproducible ``.tar.gz`` of the rock's files under the directory ``top``."""
    files = collect_files(rock_dir)
    dirs = {PurePosixPath(top)}
    for rel in files:
        dirs.update(PurePosixPath(top, *rel.parts[:i]) for i in range(1, len(rel.parts)))
    entries: list[tuple[str, Path | None]] = [(str(d), None) for d in dirs]
    entries += [(str(PurePosixPath(top, rel)), rock_dir / rel) for rel in files]
    entries.sort(key=lambda entry: entry[0])

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, source in entries:
            if source is None:
                tar.addfile(_tar_info(name + "/", mode=0o755, is_dir=True))
                continue
            data = source.read_bytes()
            mode = 0o755 if source.stat().st_mode & 0o111 else 0o644
            info = _tar_info(name, size=len(data), mode=mode, is_dir=False)
            tar.addfile(info, io.BytesIO(data))

    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def _zip_member(zf: zipfile.ZipFile, name: str, data: bytes, compress: int) -> None:
    info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_DATE)
    info.compress_type = compress
    info.create_system = 3  # Unix, so external_attr carries the mode
    info.external_attr = (0o100644 & 0xFFFF) << 16
    zf.writestr(info, data)


def pack(rock_dir: Path, out_dir: Path) -> Path:
    """Write ``<package>-<version>.src.rock`` for ``rock_dir`` into ``out_dir``."""
    spec = read_rockspec(find_rockspec(rock_dir))
    archive = make_source_archive(rock_dir, spec.dir)

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, mode="w") as zf:
        _zip_member(zf, spec.rockspec_name, spec.path.read_bytes(), zipfile.ZIP_DEFLATED)
        # Already compressed: stored as is.
        _zip_member(zf, spec.archive_name, archive, zipfile.ZIP_STORED)

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / spec.rock_name
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("rock_dir", type=Path, help="directory holding the rockspec and sources")
    parser.add_argument("out_dir", type=Path, help="directory to write the .src.rock into")
    args = parser.parse_args(argv)
    try:
        out = pack(args.rock_dir, args.out_dir)
    except (OSError, ValueError) as exc:
        print(f"pack.py: {exc}", file=sys.stderr)
        return 1
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{out}  sha256={digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
