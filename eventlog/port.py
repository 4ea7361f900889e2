"""The event log port: append canonical events durably, say whether the log can take appends."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One record to append: its ordering key and its encoded event."""

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
