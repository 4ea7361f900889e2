"""The replay core, the same on every log: progress, the rebuild in memory, and the comparison.

`rebuild` folds a log into a read model with the batch core (`domain.batch`), every key in
memory; `verify` compares two read models by digest and names the keys that differ. The modules
beside it own each log's replay and verify (`replay.embedded`, `replay.kafka`).
"""

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

from tqdm import tqdm

from domain.batch import BatchFold
from domain.fold import HANDLERS, Handler
from eventlog.port import LogReader, ReadStart
from projections.store import ReadModel
from schemas.event_types import EventType


class Progress:
    """Events done, events/s and ETA, drawn by tqdm: a bar on a terminal, else a line every `every_s`.

    The total may grow while the log is replayed; `advance` follows it.
    """

    def __init__(
        self, total: int, out: TextIO | None = None, every_s: float = 1.0, label: str = "replay"
    ) -> None:
        self.out = out if out is not None else sys.stderr
        self.label = label
        self.done = 0
        self._every_s = every_s
        self._started = time.monotonic()
        self._shown = 0.0
        self._bar = tqdm(
            total=total,
            desc=label,
            unit=" events",
            file=self.out,
            mininterval=every_s,
            disable=not self.out.isatty(),
        )
        self._total = total

    @property
    def total(self) -> int:
        """The events the replay will see, as far as known."""
        return self._total

    @total.setter
    def total(self, value: int) -> None:
        self._total = value
        self._bar.total = value
        self._bar.refresh()

    def advance(self, count: int = 1) -> None:
        """Counts `count` more events and shows progress when it is time to."""
        self.done += count
        if self.done > self._total:
            self.total = self.done  # the log may grow while it is replayed
        self._bar.update(count)
        now = time.monotonic()
        if self._bar.disable and now - self._shown >= self._every_s:
            self._shown = now
            self._line(now)

    def finish(self) -> None:
        """Shows the final state."""
        if self._bar.disable:
            self._line(time.monotonic())
        self._bar.close()

    def _line(self, now: float) -> None:
        meter = tqdm.format_meter(self.done, self._total, now - self._started, unit=" events")
        self.out.write(f"{self.label}: {meter}\n")
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
    handlers: Mapping[EventType, Handler] = HANDLERS,
) -> ReadModel:
    """Folds the log from `start` up to `until` (exclusive offsets per partition, else the head) in memory."""
    # Every key starts empty and stays in memory to the end; only the states are wanted.
    folder = BatchFold(_nothing, _nothing, states_only=True, handlers=handlers)
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
