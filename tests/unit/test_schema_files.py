"""The JSON Schema files in `schemas/` are exactly what the models produce."""

import subprocess
import sys

from schemas.export import SCHEMA_DIR, rendered


def test_schema_files_match_the_models() -> None:
    for name, content in rendered().items():
        path = SCHEMA_DIR / name
        assert path.exists(), f"{name} missing: run `python -m schemas.export`"
        assert path.read_bytes() == content, f"{name} is stale: run `python -m schemas.export`"


def test_schemas_do_not_import_faust_or_aiohttp() -> None:
    code = (
        "import sys, schemas, schemas.export; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'faust', 'aiohttp', 'mode'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
