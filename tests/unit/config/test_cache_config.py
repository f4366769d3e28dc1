"""The [cache] table and its flags (--cache-repo, --no-cache-push): one clear line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from qjson_tasks.config.load import Overrides, apply_overrides, load_target
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError
from tests.unit.configs import mutated, write

REPOSITORY = "ghcr.io/org/qjson-cache"


def target(tmp_path: Path, *changes: tuple[str, object]) -> Target:
    return load_target(write(tmp_path / "cfg" / "t.toml", mutated(*changes)))


def test_a_cache_table_reads_with_its_defaults(tmp_path: Path) -> None:
    cache = target(tmp_path, ("cache.repository", REPOSITORY)).config.cache
    assert cache is not None
    assert (cache.repository, cache.push, cache.tls_verify) == (REPOSITORY, True, True)
    assert target(tmp_path).config.cache is None


@pytest.mark.parametrize(
    "value",
    ["qjson-cache", "ghcr.io", "ghcr.io/org/cache:latest", "org/qjson", "GHCR.io/Org/x"],
    ids=["no-registry", "no-namespace", "tag", "first-part-not-a-registry", "upper-case"],
)
def test_a_bad_repository_is_one_line_naming_the_field(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        target(tmp_path, ("cache.repository", value))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'cfg' / 't.toml'}: cache.repository: "), message
    assert "use REGISTRY/NAMESPACE" in message


def test_an_unknown_cache_key_names_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cache\.pull: unknown key \(allowed: push, repository"):
        target(tmp_path, ("cache.repository", REPOSITORY), ("cache.pull", True))


def test_the_flags_set_and_change_the_cache(tmp_path: Path) -> None:
    plain = target(tmp_path)
    given = apply_overrides(plain, Overrides(cache_repo=REPOSITORY)).config.cache
    assert given is not None and given.repository == REPOSITORY and given.push
    both = apply_overrides(plain, Overrides(cache_repo=REPOSITORY, cache_push=False))
    assert both.config.cache is not None and not both.config.cache.push
    configured = target(tmp_path, ("cache.repository", REPOSITORY), ("cache.tls_verify", False))
    read_only = apply_overrides(configured, Overrides(cache_push=False)).config.cache
    assert read_only is not None and not read_only.push and not read_only.tls_verify


def test_bad_cache_flags_name_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(target(tmp_path), Overrides(cache_repo="cache:5000"))
    assert str(info.value).startswith("--cache-repo: 'cache:5000' is not a cache repository")
    with pytest.raises(ConfigError) as info:
        apply_overrides(target(tmp_path), Overrides(cache_push=False))
    assert str(info.value).startswith("--no-cache-push: ") and "no [cache] table" in str(info.value)
