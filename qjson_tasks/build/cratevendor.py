"""`invoke vendor`'s crates: `cargo vendor --locked` of each Rust rock, run in the builder
with the builder's cargo and registry config, into DIR/crates."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from qjson_tasks.build.builder import BUILD_USER, builder_container
from qjson_tasks.build.session import Session
from qjson_tasks.build.steps import SOURCE_DIR
from qjson_tasks.config.lockfile import LockedRock
from qjson_tasks.rocks.crates import CRATES_SUBDIR, unpack_source
from qjson_tasks.rocks.vendor import locked_path

OUT_INSIDE = "/qjson-crates-out"


def cargo_vendor_argv(first: bool) -> tuple[str, ...]:
    # The builder's [source] replacement (a mirror, Debian's crates) is where crates come
    # from: cargo vendor ignores it unless told.
    keep = () if first else ("--no-delete",)
    return ("cargo", "vendor", "--locked", "--versioned-dirs", "--respect-source-config",
            *keep, OUT_INSIDE)  # fmt: skip


def rock_source(session: Session, rock: LockedRock, directory: Path, scratch: Path) -> Path:
    """The rock's sources on this machine: its directory, or its packed .src.rock unpacked."""
    if rock.kind == "directory":
        return locked_path(session.target, rock)
    return unpack_source(directory / rock.artifact, scratch / rock.name)


def vendor_crates(session: Session, directory: Path, rocks: Sequence[LockedRock]) -> Path:
    """DIR/crates with every crate the rocks' Cargo.lock files pin; returns it."""
    buildah, env = session.buildah, dict(session.target.config.builder.env)
    out = directory / CRATES_SUBDIR
    with (
        tempfile.TemporaryDirectory(prefix="qjt-crates-") as tmp,
        builder_container(session, "crates") as ctr,
    ):
        for index, rock in enumerate(rocks):
            inside = f"{SOURCE_DIR}/{rock.name}"
            buildah.copy(ctr, str(rock_source(session, rock, directory, Path(tmp))), inside)
            argv = cargo_vendor_argv(first=index == 0)
            # stdout is the config snippet cargo vendor suggests; the build writes its own.
            buildah.run(ctr, argv, env=env, workdir=inside, user=BUILD_USER, stream=False)
        with buildah.mounted(ctr) as root:
            shutil.rmtree(out, ignore_errors=True)
            shutil.copytree(root / OUT_INSIDE.lstrip("/"), out, symlinks=True)
    return out
