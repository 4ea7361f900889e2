"""Writes the canonical event's JSON Schema into `schemas/` (`python -m schemas.export`)."""

import sys
from pathlib import Path

import orjson

from schemas.event import CanonicalEvent

SCHEMA_DIR = Path(__file__).parent
SCHEMA_FILES = {"canonical-event.schema.json": CanonicalEvent}


def rendered() -> dict[str, bytes]:
    """Each schema file's name and the exact bytes the models produce for it."""
    return {
        name: orjson.dumps(model.model_json_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        + b"\n"
        for name, model in SCHEMA_FILES.items()
    }


def main() -> int:
    """Writes every schema file; exits 0."""
    for name, content in rendered().items():
        (SCHEMA_DIR / name).write_bytes(content)
        sys.stdout.write(f"wrote {SCHEMA_DIR / name}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
