"""Replay: rebuild every projection from the log alone, and compare it with the live one (`--verify`)."""

import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TextIO

from eventlog.port import LoggedRecord, LogReader, ReadStart
from projections.store import ReadModel
from streams.apply import apply_record


@dataclass
class Progress:
    """Shows events done, events/s and ETA: a bar on a terminal, plain lines otherwise."""

    total: int
    out: TextIO = field(default_factory=lambda: sys.stderr)
    every_s: float = 1.0
    done: int = 0
    _started: float = field(default_factory=time.monotonic)
    _shown: float = 0.0

    def advance(self, count: int = 1) -> None:
        """Counts `count` more events and shows progress when it is time to."""
        self.done += count
        now = time.monotonic()
        if now - self._shown >= self.every_s or self.done >= self.total:
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
            filled = width if self.total == 0 else min(width, width * self.done // max(self.total, 1))
            self.out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}" + ("\n" if final else ""))
        else:
            self.out.write(f"replay: {text}\n")
        self.out.flush()


async def rebuild(reader: LogReader, start: ReadStart, progress: Progress | None = None) -> ReadModel:
    """Folds the log from `start` to its head into fresh states and returns their read model."""
    states: dict[str, bytes] = {}
    async for record in _records(reader, start):
        applied = apply_record(states.get, record.value)
        if applied.state is not None:
            states[applied.key] = applied.state
        if progress is not None:
            progress.advance()
    if progress is not None:
        progress.finish()
    model = ReadModel()
    for key in sorted(states):
        model.apply(key, states[key])
    return model


async def _records(reader: LogReader, start: ReadStart) -> AsyncIterator[LoggedRecord]:
    async for record in reader.read(start):
        yield record


async def count_records(reader: LogReader, start: ReadStart) -> int:
    """How many records a read from `start` will see (for the progress total)."""
    head = await reader.head()
    if start.offsets is not None:
        return sum(max(end - start.offsets.get(p, 0), 0) for p, end in head.items())
    return sum(head.values())


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


def verify(live: ReadModel, rebuilt: ReadModel) -> Verdict:
    """Compares a live read model with one rebuilt from the log."""
    return Verdict(live.digest(), rebuilt.digest(), rebuilt.differing_keys(live))
