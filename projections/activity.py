"""What the log took, minute by minute: events by canonical type, unknown names, the newest arrival.

A pure function of the log's records, whatever their order. Minutes are those of the time the log
took each record (SQLite's append time; on Kafka the broker's `LogAppendTime`), so on both logs an
event counts in the minute it was accepted. Only the `WINDOW_MINUTES` minutes up to the newest one
seen are kept: older minutes are dropped, and a record of a minute already dropped counts only in
the totals.
"""

from collections import Counter
from dataclasses import dataclass, field

MINUTE_MS = 60_000
WINDOW_MINUTES = 60


@dataclass(slots=True)
class Activity:
    """Counts of the log's records: per minute (the last hour of them), in total, and unknown names."""

    per_minute: dict[int, Counter[str]] = field(default_factory=dict)  # minute since the epoch -> type -> n
    totals: Counter[str] = field(default_factory=Counter)
    unknown_names: Counter[str] = field(default_factory=Counter)
    last_appended_ms: int | None = None
    newest_minute: int | None = None

    def add(self, kind: str, appended_at_ms: int, unknown_name: str | None = None) -> None:
        """Counts one record of type `kind` the log took at `appended_at_ms` (`unknown_name`: its name)."""
        self.totals[kind] += 1
        if unknown_name is not None:
            self.unknown_names[unknown_name] += 1
        if self.last_appended_ms is None or appended_at_ms > self.last_appended_ms:
            self.last_appended_ms = appended_at_ms
        minute = appended_at_ms // MINUTE_MS
        newest = self.newest_minute
        if newest is not None and minute <= newest - WINDOW_MINUTES:
            return  # before the window
        self.per_minute.setdefault(minute, Counter())[kind] += 1
        if newest is None or minute > newest:
            self.newest_minute = minute
            for old in [m for m in self.per_minute if m <= minute - WINDOW_MINUTES]:
                del self.per_minute[old]

    def window(self, now_ms: int) -> list[tuple[int, Counter[str]]]:
        """The `WINDOW_MINUTES` minutes up to `now_ms`'s, oldest first, each with its counts by type."""
        last = now_ms // MINUTE_MS
        empty: Counter[str] = Counter()
        minutes = range(last - WINDOW_MINUTES + 1, last + 1)
        return [(minute, self.per_minute.get(minute, empty)) for minute in minutes]
