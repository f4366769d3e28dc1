"""`invoke schema`: write the target config's JSON Schema and its reference page.

Both are made from the models (config.reference) and committed; a unit test fails while
either differs from what this writes now.
"""

from __future__ import annotations

from pathlib import Path

from qjson_tasks.app.tools import PROJECT_DIR
from qjson_tasks.config.reference import (
    REFERENCE_FILE,
    SCHEMA_FILE,
    reference_markdown,
    schema_json,
    target_schema,
)


def generated_files() -> dict[Path, str]:
    """{path: the text it must hold}: schema/target.schema.json and docs/configuration.md."""
    schema = target_schema()
    return {
        PROJECT_DIR / SCHEMA_FILE: schema_json(schema),
        PROJECT_DIR / REFERENCE_FILE: reference_markdown(schema),
    }


def write_generated() -> list[tuple[Path, bool]]:
    """Write both files; (path, whether it changed) for each."""
    written = []
    for path, text in generated_files().items():
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        written.append((path, old != text))
    return written
