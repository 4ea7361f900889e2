"""Feeds the projections from the live generation's changelog, and switches to a new one atomically.

When a replay makes generation `g` live, a whole new read model is fed from `g`'s changelog beside
the one in service. Once `g`'s fold has caught up with the events topic as it was when the switch
was noticed, and the new model holds its changelog up to the end, the holder swaps models in one
assignment and the old model and its feeder are dropped. Reads go on from the old model meanwhile.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from eventlog.generations import GenerationControl, changelog_topic, fold_app_id
from eventlog.kafka_reader import KafkaLogReader, committed_offsets
from projections.changelog import ChangelogFeeder
from projections.holder import ProjectionHolder
from projections.store import ReadModel

log = logging.getLogger(__name__)

POLL_S = 0.5


class GenerationalFeeder:
    """Keeps a projection holder fed from the live generation; a `Feeder` for the projections API."""

    def __init__(
        self, bootstrap_servers: str, base: str, events_topic: str, holder: ProjectionHolder
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._base = base
        self._events_topic = events_topic
        self._holder = holder
        self._control = GenerationControl(bootstrap_servers, base)
        self._feeder: ChangelogFeeder | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def applied(self) -> int:
        """Changelog records applied to the projection in service (for tests and health)."""
        return 0 if self._feeder is None else self._feeder.applied

    async def start(self) -> None:
        """Follows the live generation in the background."""
        self._task = asyncio.create_task(self._run(), name=f"generations:{self._base}")

    async def stop(self) -> None:
        """Stops following and feeding."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._feeder is not None:
            await self._feeder.stop()

    async def _run(self) -> None:
        while True:
            try:
                async for generation in self._control.follow():
                    if self._feeder is None:
                        self._holder.swap(ReadModel(), generation)  # nothing served yet: start fresh
                        self._feeder = self._feed(generation, self._holder.current.model)
                        await self._feeder.start()
                    elif generation != self._holder.current.version:
                        await self._switch(generation)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following the generations failed; retrying")
                await asyncio.sleep(1.0)

    def _feed(self, generation: int, model: ReadModel) -> ChangelogFeeder:
        return ChangelogFeeder(self._bootstrap_servers, changelog_topic(self._base, generation), model)

    async def _switch(self, generation: int) -> None:
        log.info("generation %d is live; building its projection beside the one in service", generation)
        model = ReadModel()
        feeder = self._feed(generation, model)
        await feeder.start()
        try:
            head = await KafkaLogReader(self._bootstrap_servers, self._events_topic).head()
            group = fold_app_id(self._base, generation)
            await _until(lambda: _folded_up_to(self._bootstrap_servers, group, self._events_topic, head))
            changelog = KafkaLogReader(self._bootstrap_servers, changelog_topic(self._base, generation))
            ends = await changelog.head()
            await _until(lambda: _now(feeder.reached(ends)))
        except BaseException:
            await feeder.stop()
            raise
        old, self._feeder = self._feeder, feeder
        self._holder.swap(model, generation)
        log.info("projection of generation %d in service", generation)
        if old is not None:
            await old.stop()


async def _folded_up_to(bootstrap_servers: str, group: str, topic: str, head: dict[int, int]) -> bool:
    done = await committed_offsets(bootstrap_servers, group, topic)
    return all(done.get(p, 0) >= end for p, end in head.items())


async def _now(value: bool) -> bool:
    return value


async def _until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Polls `condition` every POLL_S until it holds."""
    while True:
        if await condition():
            return
        await asyncio.sleep(POLL_S)
