"""Replay: rebuild every projection from the log alone, switch reads to it, or compare it with the live one.

On the embedded log a replay folds the log into a new state version next to the live one (the
server keeps answering from the live one), folds on until it has caught up with the head, then
switches the live version in one transaction; the running server reloads and swaps its projection
atomically. Actions are never re-sent by a replay: only events the live fold had not reached yet
get their actions queued. `--verify` folds the log up to exactly the live position into memory and
compares state digests. On Kafka, `--verify` compares a rebuild of the events topic with the live
engagement table read from its changelog.
"""

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from domain.actions import Action
from domain.batch import BatchFold
from eventlog.port import LogReader, ReadStart
from projections.store import ReadModel
from streams.embedded import StateDb

PARTITION = 0  # the embedded log has one partition
# A version being built is written once this many customers changed since its last write, and at the
# end: a key is written once per fill however many of its events the fill holds, and a fill encodes at
# most about this many states at once (some 2 KB each).
FILL_KEYS = 50_000
KEEP = 200_000


@dataclass
class Progress:
    """Shows events done, events/s and ETA: a bar on a terminal, plain lines otherwise."""

    total: int
    out: TextIO = field(default_factory=lambda: sys.stderr)
    every_s: float = 1.0
    label: str = "replay"
    done: int = 0
    _started: float = field(default_factory=time.monotonic)
    _shown: float = 0.0

    def advance(self, count: int = 1) -> None:
        """Counts `count` more events and shows progress when it is time to."""
        self.done += count
        self.total = max(self.total, self.done)  # the log may grow while it is replayed
        now = time.monotonic()
        if now - self._shown >= self.every_s:
            self._shown = now
            self._show(now, final=False)

    def finish(self) -> None:
        """Shows the final line."""
        self._show(time.monotonic(), final=True)

    def _show(self, now: float, *, final: bool) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        left = max(self.total - self.done, 0)
        eta = f"{left / rate:.0f}s" if rate > 0 and left else "0s"
        text = f"{self.done}/{self.total} events, {rate:.0f} events/s, ETA {eta}"
        if self.out.isatty():
            width = 30
            filled = width if self.total == 0 else min(width, width * self.done // self.total)
            bar = f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {text}"
            self.out.write(bar + ("\n" if final else ""))
        else:
            self.out.write(f"{self.label}: {text}\n")
        self.out.flush()


async def count_records(reader: LogReader, start: ReadStart, until: dict[int, int] | None = None) -> int:
    """How many records a read from `start` (up to `until`, or the head) will see: the progress total."""
    ends = until if until is not None else await reader.head()
    if start.offsets is not None:
        return sum(max(end - start.offsets.get(p, 0), 0) for p, end in ends.items())
    return sum(ends.values())


async def rebuild(
    reader: LogReader,
    start: ReadStart,
    progress: Progress | None = None,
    until: dict[int, int] | None = None,
) -> ReadModel:
    """Folds the log from `start` up to `until` (exclusive offsets per partition, else the head) in memory."""
    # Every key starts empty and stays in memory to the end; only the states are wanted.
    folder = BatchFold(_nothing, _nothing, states_only=True)
    async for batch in reader.read_batches(start):
        records = batch if until is None else [r for r in batch if r.offset < until.get(r.partition, 0)]
        folder.add_all(records)
        if progress is not None:
            progress.advance(len(records))
    if progress is not None:
        progress.finish()
    return ReadModel.of_states(sorted(folder.take_states().items()))


def _nothing(_key: str) -> bytes | None:
    return None


@dataclass(frozen=True)
class Verdict:
    """The outcome of `--verify`: the two digests and the keys (customers) whose states differ."""

    live_digest: str
    rebuilt_digest: str
    differing: list[str]

    @property
    def equal(self) -> bool:
        """True when the rebuilt state equals the live one."""
        return self.live_digest == self.rebuilt_digest

    def report(self, out: TextIO) -> None:
        """Says whether the states agree and, when not, lists the differing keys."""
        out.write(f"live digest:    {self.live_digest}\nrebuilt digest: {self.rebuilt_digest}\n")
        if self.equal:
            out.write("verify: the live state equals a rebuild from the log\n")
            return
        out.write(f"verify: {len(self.differing)} key(s) differ from a rebuild from the log:\n")
        for key in self.differing:
            out.write(f"  {key}\n")


def verify(live: ReadModel, rebuilt: ReadModel) -> Verdict:
    """Compares a live read model with one rebuilt from the log."""
    return Verdict(live.digest(), rebuilt.digest(), rebuilt.differing_keys(live))


async def verify_embedded(reader: LogReader, db: StateDb, progress: Progress | None = None) -> Verdict:
    """Rebuilds the log up to the live version's position and compares it with that version's states."""
    position, states = db.snapshot()
    if progress is not None:
        progress.total = position
    rebuilt = await rebuild(reader, ReadStart(), progress, until={PARTITION: position})
    return verify(ReadModel.of(states), rebuilt)


@dataclass
class _VersionBuild:
    """A state version being folded from the log by a replay."""

    db: StateDb
    version: int
    next_offset: int
    live_next_at_start: int
    tail_actions: list[tuple[int, Action]] = field(default_factory=list)
    folded: int = 0
    _folder: BatchFold | None = None

    async def fold(self, reader: LogReader, start: ReadStart, progress: Progress | None) -> None:
        if self._folder is None:
            # The working copies stay between fills and catch-up rounds: only this replay writes this version.
            self._folder = BatchFold(self._stored_state, self._stored_seen, keep=KEEP)
        folder = self._folder
        async for batch in reader.read_batches(start):
            folder.add_all(batch)
            if progress is not None:
                progress.advance(len(batch))
            if folder.touched >= FILL_KEYS:
                self._fill(folder)
        self._fill(folder)

    def _stored_state(self, key: str) -> bytes | None:
        return None if self._all_in_memory() else self.db.get(key, self.version)

    def _stored_seen(self, key: str) -> bytes | None:
        return None if self._all_in_memory() else self.db.seen(key, self.version)

    def _all_in_memory(self) -> bool:
        """Whether every key of the version has a working copy, so that a key without one has no row yet.

        The version started empty; until the folder first drops its copies, each key it wrote keeps one.
        """
        return self._folder is not None and self._folder.forgets == 0

    def _fill(self, folder: BatchFold) -> None:
        batch = folder.take()
        for placed in batch.actions:
            if placed.offset >= self.live_next_at_start:  # the live fold may not have acted on it yet
                self.tail_actions.append((placed.offset, placed.action))
        self.next_offset = batch.next_offsets.get(PARTITION, self.next_offset)
        self.folded += batch.records
        self.db.fill(self.version, batch)


async def replay_embedded(
    reader: LogReader,
    db: StateDb,
    start: ReadStart,
    progress: Progress | None = None,
    before_switch: Callable[[int], None] | None = None,
) -> int:
    """Builds a new state version from `start`, catches up with the head, and makes it live.

    Returns the new version. `before_switch` is called before each switch attempt (for tests).
    """
    head = (await reader.head()).get(PARTITION, 0)
    first = head if start.at_ms is not None else (start.offsets or {}).get(PARTITION, 0)
    if progress is not None:
        progress.total = await count_records(reader, start)
    build = _VersionBuild(db, db.create_version(first), first, db.next_offset(db.live_version()))
    await build.fold(reader, start, progress)
    while True:
        await build.fold(reader, ReadStart(offsets={PARTITION: build.next_offset}), progress)
        if before_switch is not None:
            before_switch(build.version)
        if db.switch(build.version, build.tail_actions):
            break
    if progress is not None:
        progress.finish()
    return build.version
