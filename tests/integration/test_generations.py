"""The generation control topic: which fold generation is live."""

import asyncio
import uuid

import pytest

from eventlog.generations import GenerationControl

pytestmark = pytest.mark.kafka


def _fetchers() -> list[asyncio.Task[object]]:
    """Running aiokafka fetch loops: one per consumer that was started and not stopped."""
    return [task for task in asyncio.all_tasks() if "_fetch_requests_routine" in repr(task.get_coro())]


async def test_live_reads_the_generation_and_stops_its_consumer(kafka_bootstrap: str) -> None:
    control = GenerationControl(kafka_bootstrap, f"generations-{uuid.uuid4().hex[:8]}", 1)
    before = _fetchers()

    assert await control.live() == 0
    await control.set_live(3)
    assert await control.live() == 3

    assert _fetchers() == before  # each read's consumer stopped before live() returned
