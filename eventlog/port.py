"""The event log port: append canonical events durably, say whether the log can take appends."""

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol


class LogRecord(NamedTuple):
    """One record to append: its ordering key and its encoded event (a tuple: made per event, cheap)."""

    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class LogHealth:
    """Whether the log answers, and a short human-readable detail."""

    ok: bool
    detail: str


class LogUnavailable(Exception):
    """The log could not durably take an append; nothing was acknowledged."""


class EventLog(Protocol):
    """An append-only log of canonical events, ordered per key."""

    async def start(self) -> None:
        """Opens connections; a log that cannot be reached yet still starts and reports it in health()."""

    async def stop(self) -> None:
        """Flushes and closes."""

    async def append(self, records: Sequence[LogRecord]) -> None:
        """Returns once every record is durably stored; raises LogUnavailable otherwise."""

    async def health(self) -> LogHealth:
        """Whether an append would be taken now."""


class LoggedRecord(NamedTuple):
    """A record as read back from the log, with its position and the time the log took it.

    A named tuple rather than a frozen dataclass: every record read is one, and a tuple is made
    several times faster (a replay reads millions).
    """

    partition: int
    offset: int
    key: bytes
    value: bytes
    appended_at_ms: int


@dataclass(frozen=True, slots=True)
class ReadStart:
    """Where a read begins: the beginning, given offsets per partition, or the first record from a time on."""

    offsets: Mapping[int, int] | None = None
    at_ms: int | None = None


class LogReader(Protocol):
    """Reads the log back, in order within each partition (so within each key)."""

    async def head(self) -> dict[int, int]:
        """The offset the next record of each partition will get."""

    def read(self, start: ReadStart) -> AsyncIterator[LoggedRecord]:
        """The records from `start` up to the head as it was when the read began."""

    def read_batches(self, start: ReadStart) -> AsyncIterator[Sequence[LoggedRecord]]:
        """What `read` gives, in non-empty batches as the backend hands them over (for batch folds)."""
