"""The worker supervisor with stand-in children: it follows the live generation, survives a broker it
cannot reach yet, restarts a child that dies, and stops its children on SIGTERM.

The supervisor runs in a process of its own (tests/functional/supervised.py) and the tests signal
that process, never themselves; what it and its children did is read from the lines they append
to a record file.
"""

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import command_line, eventually

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXIT_GUARD_S = 60.0  # a guard against a hung supervisor, not a timing assertion


@dataclass(frozen=True)
class Line:
    """One line of the record: what happened, to which process, with which `worker` arguments."""

    what: str
    pid: int
    args: str


class Supervised:
    """`python -m tests.functional.supervised` in its own session, so that leftovers can be killed."""

    def __init__(self, tmp_path: Path, lifetime: float, *, effects: bool) -> None:
        self.record = tmp_path / "record.txt"
        self.log_path = tmp_path / "supervisor.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.functional.supervised",
                    str(self.record),
                    str(lifetime),
                    *(["--effects"] if effects else []),
                ],
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def raw(self) -> list[str]:
        return self.record.read_text().splitlines() if self.record.exists() else []

    def lines(self, what: str) -> list[Line]:
        """The `started` or `stopped` lines of the stand-in children, in order."""
        found = []
        for line in self.raw():
            kind, _, rest = line.partition(" ")
            if kind == what:
                pid, _, args = rest.partition(" ")
                found.append(Line(kind, int(pid), args))
        return found

    def started(self, args: str) -> list[Line]:
        return [line for line in self.lines("started") if line.args == args]

    def running(self, pid: int) -> bool:
        """Whether that stand-in still runs (an exited one, zombie or reaped, shows no command line)."""
        return str(self.record) in command_line(pid)

    def signal(self, sig: signal.Signals) -> None:
        """Signals the supervisor alone, not its process group: stopping the children is its job."""
        os.kill(self.process.pid, sig)

    async def exit_code(self) -> int:
        async def code() -> int | None:
            return self.process.poll()

        result = await eventually(code, lambda rc: rc is not None, within=EXIT_GUARD_S)
        assert result is not None
        return result

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill_all(self) -> None:
        """SIGKILL to the supervisor and whatever it left behind in its process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


Spawn = Callable[[float, bool], Supervised]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Starts a supervisor (children's lifetime, whether it runs the effector); kills all it left behind."""
    started: list[Supervised] = []

    def start(lifetime: float, effects: bool) -> Supervised:
        started.append(Supervised(tmp_path, lifetime, effects=effects))
        return started[-1]

    yield start
    for supervised in started:
        supervised.kill_all()


async def lines_of(supervised: Supervised) -> list[str]:
    return supervised.raw()


FOLD_0 = "worker --role fold --generation 0"
FOLD_1 = "worker --role fold --generation 1"
EFFECTS = "worker --role effects"


async def test_follows_the_live_generation_and_stops_its_children_on_sigterm(spawn: Spawn) -> None:
    supervised = spawn(600, True)
    await eventually(
        lambda: lines_of(supervised),
        lambda _: bool(supervised.started(FOLD_0) and supervised.started(EFFECTS)),
        within=30,
    )
    follows = [line for line in supervised.raw() if line.startswith("follow")]
    assert follows == ["follow failed", "follow"]  # the first follow failed and was retried

    supervised.signal(signal.SIGUSR1)  # the stand-in control says generation 1 is live
    await eventually(lambda: lines_of(supervised), lambda _: bool(supervised.started(FOLD_1)), within=30)
    [old] = supervised.started(FOLD_0)
    assert [line.pid for line in supervised.lines("stopped")] == [old.pid]  # the old fold, and only it

    supervised.signal(signal.SIGTERM)
    assert await supervised.exit_code() == 0, supervised.output()

    started = supervised.lines("started")
    assert sorted(line.args for line in started) == sorted([EFFECTS, FOLD_0, FOLD_1])  # none restarted
    stopped = {line.pid for line in supervised.lines("stopped")}
    assert [line for line in started if line.pid not in stopped] == []  # each got its SIGTERM
    assert [line for line in started if supervised.running(line.pid)] == []  # and none outlived it


async def test_a_child_that_dies_is_started_again(spawn: Spawn) -> None:
    supervised = spawn(0, False)
    await eventually(lambda: lines_of(supervised), lambda _: len(supervised.started(FOLD_0)) >= 3, within=30)
    assert len({line.pid for line in supervised.started(FOLD_0)}) == len(supervised.started(FOLD_0))

    supervised.signal(signal.SIGTERM)
    assert await supervised.exit_code() == 0, supervised.output()
    assert [line for line in supervised.lines("started") if supervised.running(line.pid)] == []
