"""The replay core, the same on every log: progress, the rebuild in memory, and the comparison.

`rebuild` folds a log into a read model with the batch core (`domain.batch`), every key in
memory; `verify` compares two read models by digest and names the keys that differ. The modules
beside it own each log's replay and verify (`replay.embedded`, `replay.kafka`).
"""

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from domain.batch import BatchFold
from eventlog.port import LogReader, ReadStart
from projections.store import ReadModel


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
