"""Replay and verify on the embedded log (SQLite).

A replay folds the log into a new state version next to the live one (the server keeps answering
from the live one), folds on until it has caught up with the head, then switches the live version
in one transaction; the running server reloads and swaps its projection atomically. Actions are
never re-sent by a replay: only events the live fold had not reached yet get their actions
queued. `verify` folds the log up to exactly the live position into memory and compares digests.
"""

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from domain.actions import Action
from domain.batch import Batch, BatchFold
from domain.dead_letters import DeadLetter
from domain.fold import HANDLERS, Handler
from eventlog.port import LogReader, ReadStart
from eventlog.sqlite import PARTITION, SqliteEventLog
from projections.store import ReadModel
from replay.core import Progress, Verdict, count_records, rebuild, verify
from schemas.event_types import EventType
from streams.embedded import StateDb

# A version being built is written once this many customers changed since its last write, and at the
# end: a key is written once per fill however many of its events the fill holds, and a fill encodes at
# most about this many states at once (some 2 KB each).
FILL_KEYS = 50_000
KEEP = 200_000


async def run_embedded(
    log_path: Path,
    state_path: Path,
    start: ReadStart,
    *,
    verify_only: bool,
    handlers: Mapping[EventType, Handler] = HANDLERS,
) -> int:
    """Replays the log at `log_path` into the state at `state_path`, or verifies it; the exit code."""
    log = SqliteEventLog(log_path)
    db = StateDb(state_path)
    try:
        progress = Progress(total=0)
        if verify_only:
            verdict = await verify_embedded(log, db, progress, handlers)
            verdict.report(sys.stdout)
            return 0 if verdict.equal else 1
        version = await replay_embedded(log, db, start, progress, handlers=handlers)
        sys.stdout.write(f"replay: state version {version} is live; the old one was dropped\n")
        return 0
    finally:
        db.close()
        await log.stop()


async def verify_embedded(
    reader: LogReader,
    db: StateDb,
    progress: Progress | None = None,
    handlers: Mapping[EventType, Handler] = HANDLERS,
) -> Verdict:
    """Rebuilds the log up to the live version's position and compares it with that version's states."""
    position, states = await db.call(db.snapshot)
    if progress is not None:
        progress.total = position
    rebuilt = await rebuild(reader, ReadStart(), progress, until={PARTITION: position}, handlers=handlers)
    return verify(ReadModel.of(states), rebuilt)


@dataclass
class _VersionBuild:
    """A state version being folded from the log by a replay."""

    db: StateDb
    version: int
    next_offset: int
    live_next_at_start: int
    handlers: Mapping[EventType, Handler] = field(default_factory=lambda: HANDLERS)
    tail_actions: list[tuple[int, Action]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)  # kept with the live ones at the switch
    folded: int = 0
    _folder: BatchFold | None = None

    async def fold(self, reader: LogReader, start: ReadStart, progress: Progress | None) -> None:
        if self._folder is None:
            # The working copies stay between fills and catch-up rounds: only this replay writes this version.
            self._folder = BatchFold(self._stored_state, self._stored_seen, keep=KEEP, handlers=self.handlers)
        folder = self._folder
        async for batch in reader.read_batches(start):
            await self.db.call(folder.add_all, batch)  # it reads stored states once it has dropped copies
            if progress is not None:
                progress.advance(len(batch))
            if folder.touched >= FILL_KEYS:
                await self._fill(folder)
        await self._fill(folder)

    def _stored_state(self, key: str) -> bytes | None:
        return None if self._all_in_memory() else self.db.get(key, self.version)

    def _stored_seen(self, key: str) -> bytes | None:
        return None if self._all_in_memory() else self.db.seen(key, self.version)

    def _all_in_memory(self) -> bool:
        """Whether every key of the version has a working copy, so that a key without one has no row yet.

        The version started empty; until the folder first drops its copies, each key it wrote keeps one.
        """
        return self._folder is not None and self._folder.forgets == 0

    async def _fill(self, folder: BatchFold) -> None:
        batch = await self.db.call(self._take_and_write, folder)
        for placed in batch.actions:
            if placed.offset >= self.live_next_at_start:  # the live fold may not have acted on it yet
                self.tail_actions.append((placed.offset, placed.action))
        self.dead += batch.dead
        self.next_offset = batch.next_offsets.get(PARTITION, self.next_offset)
        self.folded += batch.records

    def _take_and_write(self, folder: BatchFold) -> Batch:
        batch = folder.take()
        self.db.fill(self.version, batch)
        return batch


async def replay_embedded(  # noqa: PLR0913 - the fold's handlers are keyword-only
    reader: LogReader,
    db: StateDb,
    start: ReadStart,
    progress: Progress | None = None,
    before_switch: Callable[[int], None] | None = None,
    *,
    handlers: Mapping[EventType, Handler] = HANDLERS,
) -> int:
    """Builds a new state version from `start`, catches up with the head, and makes it live.

    Returns the new version. `before_switch` is called before each switch attempt (for tests).
    """
    head = (await reader.head()).get(PARTITION, 0)
    first = head if start.at_ms is not None else (start.offsets or {}).get(PARTITION, 0)
    if progress is not None:
        progress.total = await count_records(reader, start)
    version = await db.call(db.create_version, first)
    live_next = await db.call(lambda: db.next_offset(db.live_version()))
    build = _VersionBuild(db, version, first, live_next, handlers)
    await build.fold(reader, start, progress)
    while True:
        await build.fold(reader, ReadStart(offsets={PARTITION: build.next_offset}), progress)
        if before_switch is not None:
            before_switch(build.version)
        if await db.call(db.switch, build.version, build.tail_actions, build.dead):
            break
    if progress is not None:
        progress.finish()
    return build.version
