"""The README's commands, read from the README itself so tests run exactly what users are told to run."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def shell_blocks() -> list[str]:
    """Every ```sh block of the README, in order."""
    return re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)


def run_command() -> str:
    """The README's command that runs the main job."""
    return shell_blocks()[0].strip()


def readme_test_command() -> str:
    """The README's command that runs the tests."""
    return shell_blocks()[1].strip()


def try_it_script() -> str:
    """The README's snippet that posts a signed webhook and reads the customer back."""
    return shell_blocks()[2]
