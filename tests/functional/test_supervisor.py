"""The worker supervisor with a stand-in child: it follows the live generation, survives a broker it
cannot reach yet, restarts a child that dies, and stops its children on SIGTERM."""

import asyncio
import os
import signal
import sys
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from tajo_events import supervisor
from tests.processes import eventually

STAND_IN = "import sys, time; open(sys.argv[1], 'a').write(' '.join(sys.argv[2:]) + chr(10)); time.sleep({})"


class FakeControl:
    """Fails to follow once (the broker is away), then says 0, then 1 when told to."""

    def __init__(self) -> None:
        self.calls = 0
        self.switch = asyncio.Event()

    async def follow(self) -> AsyncGenerator[int, None]:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("broker not reachable yet")
        yield 0
        await self.switch.wait()
        yield 1
        await asyncio.Event().wait()


def started(record: Path) -> list[str]:
    return record.read_text().splitlines() if record.exists() else []


async def lines(record: Path) -> list[str]:
    return started(record)


async def test_follows_the_live_generation_and_stops_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "started.txt"
    monkeypatch.setattr(supervisor, "COMMAND", [sys.executable, "-c", STAND_IN.format(600), str(record)])
    monkeypatch.setattr(supervisor, "RESTART_DELAY_S", 0.1)
    control = FakeControl()
    running = asyncio.create_task(supervisor.supervise(control, effects=True))
    await eventually(lambda: lines(record), lambda ls: "worker --role fold --generation 0" in ls, within=30)
    assert "worker --role effects" in started(record)
    assert control.calls == 2  # the first follow failed and was retried

    control.switch.set()
    await eventually(lambda: lines(record), lambda ls: "worker --role fold --generation 1" in ls, within=30)
    os.kill(os.getpid(), signal.SIGTERM)  # the supervisor's handler takes it
    assert await asyncio.wait_for(running, 60) == 0
    assert started(record).count("worker --role fold --generation 0") == 1  # stopped, not restarted


async def test_a_child_that_dies_is_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "started.txt"
    monkeypatch.setattr(supervisor, "COMMAND", [sys.executable, "-c", STAND_IN.format(0), str(record)])
    monkeypatch.setattr(supervisor, "RESTART_DELAY_S", 0.1)
    running = asyncio.create_task(supervisor.supervise(FakeControl(), effects=False))
    await eventually(
        lambda: lines(record), lambda ls: ls.count("worker --role fold --generation 0") >= 3, within=30
    )
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(running, 60) == 0
