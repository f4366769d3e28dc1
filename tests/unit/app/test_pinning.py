"""Pinning images by digest: which refs float, the warning, the config rewrite, `pin`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qjson_tasks.app.pinning import (
    FloatingRef,
    floating_refs,
    is_local,
    is_pinned,
    pin_target,
    rewrite_value,
    with_digest,
)
from qjson_tasks.app.targets import floating_warnings
from qjson_tasks.app.tools import CONFIG_DIR, PROJECT_DIR
from qjson_tasks.config.load import load_target
from qjson_tasks.errors import ConfigError, ToolError
from qjson_tasks.host.buildah import Buildah
from tests.unit.fakes import Argv, FakeRunner

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
APISIX = "docker.io/apache/apisix:3.16.0-debian"
RUST = "docker.io/library/rust:1-bookworm"


@dataclass
class DigestRunner(FakeRunner):
    """The fake store, whose `inspect` also reports each image's manifest digest."""

    digests: dict[str, str] = field(default_factory=dict)

    def _buildah(self, sub: str, args: Argv) -> str:
        out = super()._buildah(sub, args)
        if sub == "inspect":
            document = json.loads(out)
            document["FromImageDigest"] = self.digests.get(args[-1], "")
            return json.dumps(document)
        return out


def copy_config(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    shutil.copyfile(CONFIG_DIR / f"{name}.toml", path)
    return path


# --- which refs float ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "local", "pinned"),
    [
        ("localhost/qjson-tasks/bookworm-luajit:latest", True, False),
        ("localhost:5000/ci/rust:1-bookworm", True, False),
        (APISIX, False, False),
        (f"{APISIX}@{DIGEST}", False, True),
        (f"docker.io/apache/apisix@{DIGEST}", False, True),
        ("debian:bookworm-slim", False, False),
        ("localhost", False, False),  # a short name `localhost`, not the local registry
        ("registry.example.org/localhost/x:1", False, False),
    ],
)
def test_local_and_pinned(ref: str, local: bool, pinned: bool) -> None:
    assert (is_local(ref), is_pinned(ref)) == (local, pinned)


def test_apisix_floats_in_both_images_and_offline_in_none() -> None:
    apisix = load_target(CONFIG_DIR / "apisix.toml").config
    assert floating_refs(apisix) == [
        FloatingRef("runtime", "base_image", APISIX),
        FloatingRef("builder", "image", RUST),
    ]
    assert floating_refs(load_target(CONFIG_DIR / "offline.toml").config) == []


def test_the_warning_is_one_line_with_the_command() -> None:
    target = load_target(CONFIG_DIR / "apisix.toml")
    first, second = floating_warnings(target)
    assert first == (
        f"WARNING {target.path}: runtime.base_image {APISIX} is a floating tag"
        " (no @sha256 digest); pin it with: invoke pin --target apisix"
    )
    assert second.startswith(f"WARNING {target.path}: builder.image {RUST} is a floating tag")
    assert floating_warnings(load_target(CONFIG_DIR / "offline.toml")) == []


def test_a_config_outside_config_dir_is_pinned_by_path(tmp_path: Path) -> None:
    target = load_target(copy_config(tmp_path, "openresty"))
    lines = floating_warnings(target)
    assert len(lines) == 2
    assert all(line.endswith(f"pin it with: invoke pin --config {target.path}") for line in lines)


# --- the rewrite -------------------------------------------------------------------------------


def test_with_digest_keeps_the_tag_and_replaces_an_old_digest() -> None:
    assert with_digest(APISIX, DIGEST) == f"{APISIX}@{DIGEST}"
    assert with_digest(f"{APISIX}@{OTHER}", DIGEST) == f"{APISIX}@{DIGEST}"
    with pytest.raises(ToolError, match="not a sha256 digest"):
        with_digest(APISIX, "sha256:abc")


def test_rewrite_changes_that_value_only_and_keeps_comments() -> None:
    text = (CONFIG_DIR / "apisix.toml").read_text()
    pinned = f"{APISIX}@{DIGEST}"
    result = rewrite_value(text, "runtime", "base_image", APISIX, pinned)
    before, after = text.splitlines(), result.splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [(f'base_image = "{APISIX}"', f'base_image = "{pinned}"')]
    assert result.startswith("#:schema ../schema/target.schema.json\n# Apache APISIX")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            f'[runtime]\nbase_image = "{APISIX}"  # the runtime\n[builder]\nimage = "{APISIX}"\n',
            f'[runtime]\nbase_image = "{APISIX}@{DIGEST}"  # the runtime\n'
            f'[builder]\nimage = "{APISIX}"\n',
            id="same-value-in-another-section",
        ),
        pytest.param(
            f'runtime.base_image = "{APISIX}"\n[builder]\nimage = "x"\n',
            f'runtime.base_image = "{APISIX}@{DIGEST}"\n[builder]\nimage = "x"\n',
            id="dotted-key",
        ),
        pytest.param(
            f"[ runtime ]\n  base_image='{APISIX}'\n",
            f"[ runtime ]\n  base_image='{APISIX}@{DIGEST}'\n",
            id="literal-string-and-spacing",
        ),
        pytest.param(
            f'[runtime.bootstrap]\nbase_image = "{APISIX}"\n[runtime]\nbase_image = "{APISIX}"\n',
            f'[runtime.bootstrap]\nbase_image = "{APISIX}"\n'
            f'[runtime]\nbase_image = "{APISIX}@{DIGEST}"\n',
            id="nested-table-not-touched",
        ),
    ],
)
def test_rewrite_finds_the_key_in_its_table(text: str, expected: str) -> None:
    assert rewrite_value(text, "runtime", "base_image", APISIX, f"{APISIX}@{DIGEST}") == expected


@pytest.mark.parametrize(
    ("text", "found"),
    [
        pytest.param('[runtime]\nbase_image = "other:1"\n', "not found", id="other-value"),
        pytest.param(f'[builder]\nbase_image = "{APISIX}"\n', "not found", id="other-table"),
        pytest.param(f'runtime = {{ base_image = "{APISIX}" }}\n', "not found", id="inline-table"),
        pytest.param(
            f'[runtime]\nbase_image = "{APISIX}"\n[runtime]\nbase_image = "{APISIX}"\n',
            "found 2 times",
            id="twice",
        ),
    ],
)
def test_rewrite_refuses_what_it_cannot_place(text: str, found: str) -> None:
    with pytest.raises(ConfigError) as info:
        rewrite_value(text, "runtime", "base_image", APISIX, f"{APISIX}@{DIGEST}")
    assert str(info.value) == (
        f'runtime.base_image = "{APISIX}" {found} as a plain string in the config; edit it by hand'
    )


# --- pin with a (fake) buildah -----------------------------------------------------------------


def test_pin_rewrites_both_images_from_local_digests(tmp_path: Path) -> None:
    path = copy_config(tmp_path, "apisix")
    runner = DigestRunner(tmp_path, images={APISIX: "a" * 64, RUST: "b" * 64})
    runner.digests = {APISIX: DIGEST, RUST: OTHER}
    lines = pin_target(load_target(path), Buildah(runner))
    assert lines == [
        f'{path}: runtime.base_image = "{APISIX}@{DIGEST}"',
        f'{path}: builder.image = "{RUST}@{OTHER}"',
    ]
    assert runner.calls == [
        ["buildah", "inspect", "--type", "image", APISIX],
        ["buildah", "inspect", "--type", "image", RUST],
    ]
    pinned = load_target(path)
    assert pinned.config.runtime.base_image == f"{APISIX}@{DIGEST}"
    assert pinned.config.builder.image == f"{RUST}@{OTHER}"
    assert floating_warnings(pinned) == []
    original = (CONFIG_DIR / "apisix.toml").read_text().splitlines()
    assert len(path.read_text().splitlines()) == len(original)
    assert [line for line in original if line.startswith("#")] == [
        line for line in path.read_text().splitlines() if line.startswith("#")
    ]


def test_pin_of_a_missing_image_says_to_pull_it_and_changes_nothing(tmp_path: Path) -> None:
    path = copy_config(tmp_path, "apisix")
    before = path.read_text()
    runner = DigestRunner(tmp_path, images={RUST: "b" * 64}, digests={RUST: OTHER})
    with pytest.raises(ToolError) as info:
        pin_target(load_target(path), Buildah(runner))
    assert str(info.value) == (
        f"{APISIX} (runtime.base_image) is not in local storage; pull it first:"
        f" buildah pull {APISIX}"
    )
    assert path.read_text() == before


def test_pin_with_nothing_floating_runs_nothing(tmp_path: Path) -> None:
    path = copy_config(tmp_path, "offline")
    runner = DigestRunner(tmp_path)
    assert pin_target(load_target(path), Buildah(runner)) == [
        f"{path}: nothing to pin (images are pinned by digest or local)"
    ]
    assert runner.calls == []


def test_pin_without_a_digest_from_buildah_is_an_error(tmp_path: Path) -> None:
    path = copy_config(tmp_path, "openresty")
    runner = DigestRunner(tmp_path, images={"docker.io/openresty/openresty:bookworm": "c" * 64})
    with pytest.raises(ToolError, match="reports no digest"):
        pin_target(load_target(path), Buildah(runner))


def test_pin_of_an_unknown_target_is_one_error_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "pin", "--target", "nope"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR unknown target 'nope'"), result.stderr
