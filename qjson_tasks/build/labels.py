"""The names of the labels qjson-tasks puts on the images it makes."""

from __future__ import annotations

from qjson_tasks.build.plan import LABEL_PREFIX

VERSION_LABEL = f"{LABEL_PREFIX}.rock.version"
TREE_FILES_LABEL = f"{LABEL_PREFIX}.tree.files"
TREE_BYTES_LABEL = f"{LABEL_PREFIX}.tree.bytes"
# One label per installed rock: {"version", "rockspec_sha256", "source_sha256"} as JSON.
ROCK_LABEL_PREFIX = f"{LABEL_PREFIX}.rocks."
TARGET_LABEL = f"{LABEL_PREFIX}.target"
BASE_LABEL = f"{LABEL_PREFIX}.base-image"
BASE_ID_LABEL = f"{LABEL_PREFIX}.base-image.id"
BUILDER_LABEL = f"{LABEL_PREFIX}.builder-image"
BUILDER_ID_LABEL = f"{LABEL_PREFIX}.builder-image.id"
# The sha256 of the image's SBOM, which names it in the SBOM store (sbom/store.py).
SBOM_LABEL = f"{LABEL_PREFIX}.sbom.sha256"
# A builder or rock-tree unit image names itself (`KIND-HASH`), so a copy in a registry
# cache can be told from an image pushed under the wrong tag.
UNIT_NAME_LABEL = f"{LABEL_PREFIX}.unit-name"
