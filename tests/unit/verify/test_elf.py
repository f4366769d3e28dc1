"""Tests on real ELF files built with the host's gcc, inside fake image roots."""

import dataclasses
import os
import platform
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from qjson_tasks.errors import VerificationError
from qjson_tasks.verify.elf import (
    ElfInfo,
    LibcInfo,
    check_library,
    detect_libc,
    glibc_version_key,
    library_dirs,
    max_glibc_version,
    read_elf,
    resolve_needed,
)

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"),
    reason="needs gcc on a glibc host",
)

LIB = PurePosixPath("/usr/local/lib/lua/5.1/qjson.so")
EM_AARCH64 = 183

USES_LIBC = "#include <string.h>\nsize_t count(const char *s) { return strlen(s); }\n"
# pthread_create moved into libc in glibc 2.34, so this needs GLIBC_2.34 there.
USES_NEW_GLIBC = """#include <pthread.h>
static void *run(void *arg) { return arg; }
int start(pthread_t *t) { return pthread_create(t, 0, run, 0); }
"""
FAKE_LIBC_MAP = """GLIBC_2.2.5 { global: strlen; local: *; };
GLIBC_2.17 { global: fake_new; } GLIBC_2.2.5;
"""


def gcc_output(*args: str) -> str:
    return subprocess.run(["gcc", *args], check=True, capture_output=True, text=True).stdout.strip()


def triplet() -> str:
    return gcc_output("-print-multiarch") or f"{platform.machine()}-linux-gnu"


def host_libc() -> Path:
    return Path(gcc_output("-print-file-name=libc.so.6")).resolve()


def host_glibc_version() -> str:
    return os.confstr("CS_GNU_LIBC_VERSION").split()[1]


def build(out: Path, source: str, *args: str, shared: bool = True) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / f"{out.name}.c"
    src.write_text(source)
    flags = ["-shared", "-fPIC"] if shared else []
    subprocess.run(["gcc", *flags, "-o", str(out), str(src), *args], check=True)
    return out


def put(root: Path, image: PurePosixPath | str, host_file: Path) -> Path:
    target = root / str(image).lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(host_file, target)
    return target


def symlink(root: Path, image: str, target: str) -> None:
    link = root / image.lstrip("/")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


def patch_machine(path: Path, machine: int) -> None:
    data = bytearray(path.read_bytes())
    data[18:20] = machine.to_bytes(2, "little" if data[5] == 1 else "big")
    path.write_bytes(bytes(data))


@dataclasses.dataclass(frozen=True)
class Built:
    plain: Path  # needs libc.so.6 only, soname libplain.so.1
    new_glibc: Path  # needs GLIBC_2.34
    nothere: Path  # libnothere.so itself
    needs_nothere: Path  # DT_NEEDED libnothere.so, RUNPATH $ORIGIN/../deps
    needs_nothere_rpath: Path  # DT_NEEDED libnothere.so, RPATH /opt/old/lib
    needs_gcc_s: Path
    fake_glibc_217: Path  # a "libc.so.6" defining GLIBC_2.2.5 and GLIBC_2.17 only
    musl_libc: Path  # a "libc.musl-<arch>.so.1"
    musl_built: Path  # needs libc.musl-<arch>.so.1
    program: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("elf")
    deps = out / "deps"
    nothere = build(deps / "libnothere.so", "int nothere(void) { return 1; }\n")
    needs = "int nothere(void);\nint call(void) { return nothere(); }\n"
    map_file = out / "libc.map"
    map_file.write_text(FAKE_LIBC_MAP)
    musl_name = f"libc.musl-{platform.machine()}.so.1"
    musl_libc = build(
        out / "musl" / musl_name,
        "int puts(const char *s) { return 0; }\n",
        "-nostdlib",
        f"-Wl,-soname,{musl_name}",
    )
    return Built(
        plain=build(out / "libplain.so", USES_LIBC, "-Wl,-soname,libplain.so.1"),
        new_glibc=build(out / "libnew.so", USES_NEW_GLIBC),
        nothere=nothere,
        needs_nothere=build(
            out / "libneeds.so",
            needs,
            f"-L{deps}",
            "-lnothere",
            "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../deps",
        ),
        needs_nothere_rpath=build(
            out / "libneeds_rpath.so",
            needs,
            f"-L{deps}",
            "-lnothere",
            "-Wl,--disable-new-dtags,-rpath,/opt/old/lib:/opt/older/lib",
        ),
        needs_gcc_s=build(out / "libgccs.so", USES_LIBC, "-Wl,--no-as-needed", "-lgcc_s"),
        fake_glibc_217=build(
            out / "fakelibc" / "libc.so.6",
            "unsigned long strlen(const char *s) { return 0; }\nint fake_new(void) { return 0; }\n",
            "-nostdlib",
            "-Wl,-soname,libc.so.6",
            f"-Wl,--version-script={map_file}",
        ),
        musl_libc=musl_libc,
        musl_built=build(
            out / "libmusl.so",
            'int puts(const char *s);\nint hi(void) { return puts("hi"); }\n',
            "-nostdlib",
            f"-L{musl_libc.parent}",
            f"-l:{musl_name}",
        ),
        program=build(out / "prog", "int main(void) { return 0; }\n", shared=False),
    )


def glibc_root(base: Path, libc: Path) -> Path:
    """A Debian-like merged-/usr image whose libc.so.6 is a copy of `libc`."""
    root = base / "glibc-root"
    arch_dir = f"/usr/lib/{triplet()}"
    put(root, f"{arch_dir}/libc-real.so", libc)
    symlink(root, "/lib", "usr/lib")
    # Absolute, and through /lib: only root-relative resolution finds it.
    symlink(root, f"{arch_dir}/libc.so.6", f"/lib/{triplet()}/libc-real.so")
    etc = root / "etc"
    (etc / "ld.so.conf.d").mkdir(parents=True)
    (etc / "ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    (etc / "ld.so.conf.d" / f"{triplet()}.conf").write_text(f"# Multiarch support\n{arch_dir}\n")
    return root


def musl_root(base: Path, built: Built) -> Path:
    root = base / "musl-root"
    loader = put(root, f"/lib/ld-musl-{platform.machine()}.so.1", built.musl_libc)
    symlink(root, f"/lib/{built.musl_libc.name}", loader.name)
    return root


@pytest.fixture
def real_glibc_root(tmp_path: Path) -> Path:
    return glibc_root(tmp_path, host_libc())


@pytest.fixture
def old_glibc_root(tmp_path: Path, built: Built) -> Path:
    return glibc_root(tmp_path, built.fake_glibc_217)


def libc_dir() -> PurePosixPath:
    return PurePosixPath(f"/usr/lib/{triplet()}")


# -- read_elf -----------------------------------------------------------------


def test_read_elf_not_elf(tmp_path: Path) -> None:
    (tmp_path / "script").write_text("#!/bin/sh\n")
    (tmp_path / "empty").write_bytes(b"")
    assert read_elf(tmp_path / "script") is None
    assert read_elf(tmp_path / "empty") is None


@pytest.mark.parametrize("data", [b"\x7fELF", b"\x7fELF\x02\x01\x01" + bytes(9)])
def test_read_elf_malformed_names_the_file(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "broken.so").write_bytes(data)
    with pytest.raises(VerificationError, match=r"broken\.so: malformed ELF file"):
        read_elf(tmp_path / "broken.so")


def test_read_elf_truncated(tmp_path: Path, built: Built) -> None:
    truncated = tmp_path / "truncated.so"
    truncated.write_bytes(built.plain.read_bytes()[:3000])
    with pytest.raises(VerificationError, match=r"truncated\.so: malformed ELF file"):
        read_elf(truncated)


def test_read_elf_shared_library(built: Built) -> None:
    info = read_elf(built.plain)
    libc = read_elf(host_libc())
    assert info is not None and libc is not None
    assert (info.machine, info.elf_class, info.little_endian) == (
        libc.machine,
        libc.elf_class,
        libc.little_endian,
    )
    assert info.needed == ("libc.so.6",)
    assert info.soname == "libplain.so.1"
    assert info.interpreter is None
    assert (info.runpath, info.rpath) == ((), ())
    assert info.is_glibc_built and not info.is_musl_built


def test_read_elf_runpath_and_rpath(built: Built) -> None:
    runpath = read_elf(built.needs_nothere)
    rpath = read_elf(built.needs_nothere_rpath)
    assert runpath is not None and rpath is not None
    assert (runpath.runpath, runpath.rpath) == (("$ORIGIN/../deps",), ())
    assert (rpath.runpath, rpath.rpath) == ((), ("/opt/old/lib", "/opt/older/lib"))
    assert runpath.needed[0] == "libnothere.so"


def test_read_elf_program_interpreter(built: Built) -> None:
    info = read_elf(built.program)
    assert info is not None and info.interpreter is not None
    assert info.interpreter.startswith("/")
    assert PurePosixPath(info.interpreter).name.startswith("ld-")


def test_glibc_versions_needed(built: Built) -> None:
    info = read_elf(built.new_glibc)
    assert info is not None
    assert "GLIBC_2.34" in info.glibc_versions_needed
    assert all(v.startswith("GLIBC_2.") for v in info.glibc_versions_needed)
    assert info.max_glibc_needed == "GLIBC_2.34"


def test_versions_defined_by_libc(built: Built) -> None:
    info = read_elf(built.fake_glibc_217)
    assert info is not None
    assert info.versions_defined == ("GLIBC_2.2.5", "GLIBC_2.17")
    assert info.soname == "libc.so.6"
    assert info.needed == ()


def test_max_glibc_version_is_numeric() -> None:
    assert max_glibc_version(["GLIBC_2.4", "GLIBC_2.34", "GLIBC_2.3.4"]) == "GLIBC_2.34"
    assert max_glibc_version(["GLIBC_2.2.5", "GLIBC_2.2"]) == "GLIBC_2.2.5"
    assert max_glibc_version([]) is None
    assert glibc_version_key("2.38") > glibc_version_key("GLIBC_2.4")
    with pytest.raises(ValueError):
        glibc_version_key("GLIBC_PRIVATE")


# -- detect_libc / library_dirs -------------------------------------------------


def test_detect_real_glibc(real_glibc_root: Path) -> None:
    libc = detect_libc(real_glibc_root)
    assert libc.kind == "glibc"
    assert libc.version == host_glibc_version()
    assert libc.path is not None and libc.path.name == "libc.so.6"


def test_detect_old_glibc(old_glibc_root: Path) -> None:
    assert detect_libc(old_glibc_root).version == "2.17"


def test_detect_musl(tmp_path: Path, built: Built) -> None:
    root = musl_root(tmp_path, built)
    # A glibc-compat libc.so.6 doesn't make it a glibc image.
    put(root, "/usr/lib/libc.so.6", built.fake_glibc_217)
    libc = detect_libc(root)
    assert libc == LibcInfo("musl", None, PurePosixPath(f"/lib/ld-musl-{platform.machine()}.so.1"))


def test_detect_unknown(tmp_path: Path) -> None:
    assert detect_libc(tmp_path) == LibcInfo("unknown")


def test_library_dirs_debian_like(real_glibc_root: Path) -> None:
    dirs = library_dirs(real_glibc_root)
    assert dirs[0] == libc_dir()  # from ld.so.conf.d, via the include glob
    assert PurePosixPath(f"/lib/{triplet()}") in dirs  # a multiarch dir present
    assert PurePosixPath("/lib") in dirs and PurePosixPath("/usr/lib") in dirs
    # Absent directories are left out.
    assert PurePosixPath("/lib64") not in dirs and PurePosixPath("/usr/local/lib") not in dirs


def test_library_dirs_conf_syntax(tmp_path: Path) -> None:
    root = tmp_path
    for directory in ("opt/a", "opt/b", "opt/c", "usr/local/lib", "usr/lib64"):
        (root / directory).mkdir(parents=True)
    etc = root / "etc"
    (etc / "conf.d").mkdir(parents=True)
    (etc / "ld.so.conf").write_text(
        "# comment\n/opt/a  # trailing comment\n\nhwcap 0 nosegneg\n"
        "include conf.d/*.conf\ninclude /etc/ld.so.conf\n/opt/missing\n"
    )
    (etc / "conf.d" / "b.conf").write_text("/opt/b\n")
    (etc / "conf.d" / "c.conf").write_text("/opt/c\n")
    (etc / "conf.d" / "ignored.txt").write_text("/opt/ignored\n")
    dirs = library_dirs(root)
    expected = ["/opt/a", "/opt/b", "/opt/c", "/usr/lib64", "/usr/local/lib"]
    assert dirs == [PurePosixPath(d) for d in expected]


def test_library_dirs_musl_path_file(tmp_path: Path) -> None:
    (tmp_path / "opt" / "musl").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / f"ld-musl-{platform.machine()}.path").write_text("/opt/musl:/opt/none\n")
    assert library_dirs(tmp_path) == [PurePosixPath("/opt/musl")]


# -- resolve_needed -----------------------------------------------------------


def test_resolve_libc_through_symlinks(real_glibc_root: Path, built: Built) -> None:
    put(real_glibc_root, LIB, built.plain)
    info = read_elf(built.plain)
    assert info is not None
    dirs = [PurePosixPath(f"/lib/{triplet()}")]
    assert resolve_needed(real_glibc_root, LIB, info, dirs) == {
        "libc.so.6": libc_dir() / "libc.so.6"
    }


def test_resolve_missing(real_glibc_root: Path, built: Built) -> None:
    info = read_elf(built.needs_nothere)
    assert info is not None
    resolved = resolve_needed(real_glibc_root, LIB, info, library_dirs(real_glibc_root))
    assert resolved == {"libnothere.so": None}  # --as-needed dropped libc.so.6


def test_resolve_runpath_origin(real_glibc_root: Path, built: Built) -> None:
    put(real_glibc_root, "/opt/app/deps/libnothere.so", built.nothere)
    put(real_glibc_root, "/opt/app/lib/libneeds.so", built.needs_nothere)
    info = read_elf(built.needs_nothere)
    assert info is not None
    resolved = resolve_needed(real_glibc_root, PurePosixPath("/opt/app/lib/libneeds.so"), info, [])
    assert resolved["libnothere.so"] == PurePosixPath("/opt/app/deps/libnothere.so")
    # $ORIGIN is the dependent's directory: elsewhere, it doesn't reach /opt/app/deps.
    assert resolve_needed(real_glibc_root, LIB, info, [])["libnothere.so"] is None


def test_rpath_used_only_without_runpath(real_glibc_root: Path, built: Built) -> None:
    put(real_glibc_root, "/opt/older/lib/libnothere.so", built.nothere)
    put(real_glibc_root, "/opt/run/libnothere.so", built.nothere)
    rpath = read_elf(built.needs_nothere_rpath)
    assert rpath is not None
    found = resolve_needed(real_glibc_root, LIB, rpath, [])["libnothere.so"]
    assert found == PurePosixPath("/opt/older/lib/libnothere.so")
    both = dataclasses.replace(rpath, runpath=("/opt/run",))
    found = resolve_needed(real_glibc_root, LIB, both, [])["libnothere.so"]
    assert found == PurePosixPath("/opt/run/libnothere.so")


def test_resolve_skips_other_machine(real_glibc_root: Path, built: Built) -> None:
    patch_machine(put(real_glibc_root, "/opt/first/libnothere.so", built.nothere), EM_AARCH64)
    info = read_elf(built.needs_nothere)
    assert info is not None
    dirs = [PurePosixPath("/opt/first"), PurePosixPath("/opt/second")]
    assert resolve_needed(real_glibc_root, LIB, info, dirs)["libnothere.so"] is None
    put(real_glibc_root, "/opt/second/libnothere.so", built.nothere)
    found = resolve_needed(real_glibc_root, LIB, info, dirs)["libnothere.so"]
    assert found == PurePosixPath("/opt/second/libnothere.so")


def test_resolve_skips_non_elf_candidates(real_glibc_root: Path, built: Built) -> None:
    for directory in ("first", "second"):
        (real_glibc_root / "opt" / directory).mkdir(parents=True)
    (real_glibc_root / "opt" / "first" / "libc.so.6").write_text("not ELF\n")
    (real_glibc_root / "opt" / "second" / "libc.so.6").write_bytes(b"\x7fELF")  # malformed
    info = read_elf(built.plain)
    assert info is not None
    dirs = [PurePosixPath("/opt/first"), PurePosixPath("/opt/second"), libc_dir()]
    assert resolve_needed(real_glibc_root, LIB, info, dirs) == {
        "libc.so.6": libc_dir() / "libc.so.6"
    }


def test_patched_machine_is_read(tmp_path: Path, built: Built) -> None:
    copy = tmp_path / "other.so"
    shutil.copyfile(built.nothere, copy)
    patch_machine(copy, EM_AARCH64)
    other, original = read_elf(copy), read_elf(built.nothere)
    assert isinstance(other, ElfInfo) and isinstance(original, ElfInfo)
    assert other.machine == "EM_AARCH64"
    assert not other.compatible_with(original)


# -- check_library ------------------------------------------------------------


def test_check_clean_library(real_glibc_root: Path, built: Built) -> None:
    put(real_glibc_root, LIB, built.new_glibc)
    assert check_library(real_glibc_root, LIB) == []


def test_check_missing_dependency(real_glibc_root: Path, built: Built) -> None:
    put(real_glibc_root, LIB, built.needs_nothere)
    assert check_library(real_glibc_root, str(LIB)) == [
        f"{LIB}: needs libnothere.so, which is missing from the image"
    ]


def test_check_missing_libgcc_s_has_hint(real_glibc_root: Path, built: Built) -> None:
    put(real_glibc_root, LIB, built.needs_gcc_s)
    [problem] = check_library(real_glibc_root, LIB)
    assert problem.startswith(f"{LIB}: needs libgcc_s.so.1, which is missing from the image")
    assert "apk add libgcc" in problem


def test_check_needs_newer_glibc(old_glibc_root: Path, built: Built) -> None:
    put(old_glibc_root, LIB, built.new_glibc)
    info = read_elf(built.new_glibc)
    assert info is not None and info.max_glibc_needed is not None
    assert glibc_version_key(info.max_glibc_needed) > glibc_version_key("2.17")
    assert check_library(old_glibc_root, LIB) == [
        f"{LIB}: needs {info.max_glibc_needed} but the image has glibc 2.17: "
        "build it with a builder on the runtime's release"
    ]


def test_check_old_enough_glibc(old_glibc_root: Path, built: Built) -> None:
    # libplain needs only GLIBC_2.2.5 on x86_64 (GLIBC_2.17 on aarch64).
    put(old_glibc_root, LIB, built.plain)
    assert check_library(old_glibc_root, LIB) == []


def test_check_glibc_library_in_musl_image(tmp_path: Path, built: Built) -> None:
    root = musl_root(tmp_path, built)
    put(root, LIB, built.plain)
    assert check_library(root, LIB) == [f"{LIB}: glibc-built library in a musl image"]


def test_check_musl_library(real_glibc_root: Path, tmp_path: Path, built: Built) -> None:
    put(real_glibc_root, LIB, built.musl_built)
    problems = check_library(real_glibc_root, LIB)
    assert problems == [f"{LIB}: musl-built library in a glibc image"]
    root = musl_root(tmp_path, built)
    put(root, LIB, built.musl_built)
    assert check_library(root, LIB) == []


def test_check_absent_or_not_elf(real_glibc_root: Path) -> None:
    assert check_library(real_glibc_root, LIB) == [f"{LIB}: not found in the image"]
    assert check_library(real_glibc_root, "/etc/ld.so.conf") == ["/etc/ld.so.conf: not an ELF file"]
