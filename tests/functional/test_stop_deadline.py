"""A worker that has begun to stop ends within its deadline even when what it waits for never comes."""

import subprocess
import sys

from streams.stop_deadline import FORCED_EXIT_CODE

HANGS = """
import threading
from streams.stop_deadline import exit_after
exit_after(0.5)
threading.Event().wait()  # a stop that waits forever, as Faust's 'Wait for streams...' did
"""


def test_a_stop_that_hangs_ends_the_process_with_the_forced_exit_code() -> None:
    done = subprocess.run(
        [sys.executable, "-c", HANGS], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == FORCED_EXIT_CODE
    assert "still stopping after 0.5s" in done.stderr


def test_a_process_that_exits_in_time_keeps_its_own_exit_code() -> None:
    script = "from streams.stop_deadline import exit_after\nexit_after(30)\nraise SystemExit(3)\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 3
