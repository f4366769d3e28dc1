"""The names a run gives what it makes, and telling them apart from anything else's.

Every working container is `qjt-<words>-<run id>` and the runtime image, until it is
verified, `localhost/qjson-tasks/unit/unverified:<target>-<run id>`. A run that dies without
cleaning up is known by its id (host/runs.py); these are the only shapes the sweep removes.
"""

from __future__ import annotations

UNIT_REPOSITORY = "localhost/qjson-tasks/unit"
CONTAINER_PREFIX = "qjt-"
TEMPORARY_PREFIX = f"{UNIT_REPOSITORY}/unverified:"
# A multi-platform build's manifest list until it gets the output tag; removed with
# `buildah manifest rm`, never `rmi` (which would remove an image the list holds).
TEMPORARY_LIST_PREFIX = f"{UNIT_REPOSITORY}/unverified-list:"


def container_name(run_id: str, *words: str) -> str:
    """A working container of the run, e.g. `qjt-<target>-<role>-<run id>`."""
    return CONTAINER_PREFIX + "-".join((*words, run_id))


def temporary_image(target: str, run_id: str) -> str:
    """The runtime image's name until it is verified and tagged."""
    return f"{TEMPORARY_PREFIX}{target}-{run_id}"


def temporary_list(target: str, run_id: str) -> str:
    """A multi-platform build's manifest list until every platform is verified."""
    return f"{TEMPORARY_LIST_PREFIX}{target}-{run_id}"


def is_temporary_list(name: str) -> bool:
    return name.startswith(TEMPORARY_LIST_PREFIX)


def _carries(name: str, prefix: str, run_id: str) -> bool:
    """prefix, at least one character, then `-<run id>` (so `qjt-<run id>` alone is not)."""
    suffix = f"-{run_id}"
    long_enough = len(name) > len(prefix) + len(suffix)
    return bool(run_id) and long_enough and name.startswith(prefix) and name.endswith(suffix)


def is_run_container(name: str, run_id: str) -> bool:
    """Whether a container name is one run_id gave (by container_name)."""
    return _carries(name, CONTAINER_PREFIX, run_id)


def is_run_image(name: str, run_id: str) -> bool:
    """Whether an image name is run_id's temporary image or list (temporary_image, _list)."""
    return _carries(name, TEMPORARY_PREFIX, run_id) or _carries(name, TEMPORARY_LIST_PREFIX, run_id)
