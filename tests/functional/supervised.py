"""The worker supervisor in a process of its own, as `tajo-events worker` runs it, for test_supervisor.py.

    python -m tests.functional.supervised RECORD LIFETIME [--effects]

Its children are stand-ins that live LIFETIME seconds; the generations control topic is a stand-in
that fails once (the broker is away), then says 0, then 1 on SIGUSR1. The stand-ins and the control
append lines to RECORD, so a test sees what happened without sharing the supervisor's process:
`follow failed`, `follow`, `started PID ARGS...`, `stopped PID ARGS...` (a stand-in got SIGTERM; it
exits half a second later, so a supervisor that does not wait for its children exits before them).
"""

import asyncio
import signal
import sys
from collections.abc import AsyncGenerator
from pathlib import Path

from tajo_events import supervisor

STAND_IN = """
import os, signal, sys, time
record, lifetime, args = sys.argv[1], float(sys.argv[2]), " ".join(sys.argv[3:])

def note(what):
    with open(record, "a") as out:
        out.write(f"{what} {os.getpid()} {args}\\n")

def stop(*_):
    note("stopped")
    time.sleep(0.5)  # a stop takes a moment (a fold commits): a supervisor that does not wait is seen
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
note("started")
time.sleep(lifetime)
"""


def note(record: Path, line: str) -> None:
    """Appends one line to the record (one write, so lines of several processes do not mix)."""
    with record.open("a") as out:
        out.write(line + "\n")


class SignalledControl:
    """Fails to follow once, then says generation 0, then 1 once the process gets SIGUSR1."""

    def __init__(self, record: Path) -> None:
        self.record = record
        self.calls = 0
        self.switch = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self.switch.set)

    async def follow(self) -> AsyncGenerator[int, None]:
        """The live generation, then each change."""
        self.calls += 1
        if self.calls == 1:
            note(self.record, "follow failed")
            raise ConnectionError("broker not reachable yet")
        note(self.record, "follow")
        yield 0
        await self.switch.wait()
        yield 1
        await asyncio.Event().wait()


async def main(record: Path, lifetime: float, *, effects: bool) -> int:
    """Supervises stand-in children until SIGTERM or SIGINT; the exit code is the supervisor's."""
    supervisor.COMMAND = [sys.executable, "-c", STAND_IN, str(record), str(lifetime)]
    supervisor.RESTART_DELAY_S = 0.1
    return await supervisor.supervise(SignalledControl(record), effects=effects)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2]), effects="--effects" in sys.argv[3:])))
