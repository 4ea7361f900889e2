"""The README documents every setting the code reads: each `TAJO_*` and `BREVO_*` name in the shipped
packages appears in it, in backticks."""

import ast
import re

from tests.readme import README, ROOT

PACKAGES = (
    "tajo_events",
    "replay",
    "ingest",
    "domain",
    "streams",
    "projections",
    "schemas",
    "eventlog",
    "telemetry",
    "webpage",
)
SETTING = re.compile(r"^(TAJO|BREVO)_[A-Z0-9_]+$")


def settings_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and SETTING.match(node.value)
                ):
                    names.add(node.value)
    return names


def test_every_setting_the_code_reads_is_in_the_readme() -> None:
    names = settings_read_by_the_code()
    assert "TAJO_API_TOKEN" in names  # the scan finds settings at all
    readme = README.read_text()
    assert sorted(name for name in names if f"`{name}`" not in readme) == []
