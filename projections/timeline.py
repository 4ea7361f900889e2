"""Each customer's latest events, newest first: a bounded projection folded straight from the log.

A pure function of the log's events, whatever their order: each address keeps the `TIMELINE_WINDOW`
events with the latest (event time, event id), each event id once (a Brevo retry has the same id).
"""

import sys
from bisect import bisect_left
from typing import NamedTuple

from pydantic import BaseModel

from domain.events import FoldEvent
from projections.common import FROZEN, iso

TIMELINE_WINDOW = 50


class TimelineEntry(NamedTuple):
    """One event of a customer's timeline (a tuple: there are up to 50 per customer)."""

    at: int  # occurred_at, epoch milliseconds
    event_id: str
    type: str
    campaign: str | None
    campaign_name: str | None
    link: str | None


def _shared(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def entry_of(event: FoldEvent) -> TimelineEntry:
    """The timeline's entry for an event (campaign ids and names, repeated across customers, kept once)."""
    return TimelineEntry(
        event.at,
        event.event_id,
        event.type.value,
        _shared(event.campaign),
        _shared(event.campaign_name),
        event.link,
    )


class Timelines:
    """The latest events of every address, up to `window` each."""

    def __init__(self, window: int = TIMELINE_WINDOW) -> None:
        self._window = window
        self._by_address: dict[str, list[TimelineEntry]] = {}  # oldest first

    def add(self, address: str, entry: TimelineEntry) -> None:
        """Keeps `entry` among the address's latest events, unless it is older than all of a full window."""
        entries = self._by_address.setdefault(address, [])
        at = bisect_left(entries, (entry.at, entry.event_id), key=lambda e: (e.at, e.event_id))
        if at < len(entries) and entries[at].event_id == entry.event_id:
            return  # seen: same id, same content, same time
        if len(entries) >= self._window:
            if at == 0:
                return  # older than every event kept
            entries.insert(at, entry)
            del entries[0]
        else:
            entries.insert(at, entry)

    def of(self, *addresses: str) -> list[TimelineEntry]:
        """The latest events of the given addresses together (a customer's email and phone), newest first."""
        unique = {e.event_id: e for a in addresses for e in self._by_address.get(a, ())}
        merged = sorted(unique.values(), key=lambda e: (e.at, e.event_id), reverse=True)
        return merged[: self._window]

    def __len__(self) -> int:
        """How many addresses have a timeline."""
        return len(self._by_address)


class TimelineEvent(BaseModel):
    """One event of a customer's timeline."""

    model_config = FROZEN

    event_id: str
    type: str
    at: str
    campaign: str | None
    campaign_name: str | None
    link: str | None


class Timeline(BaseModel):
    """A customer's latest events (its email's and its linked phone's), newest first."""

    model_config = FROZEN

    address: str
    events: list[TimelineEvent]


def timeline_view(address: str, entries: list[TimelineEntry]) -> Timeline:
    """The timeline as served."""
    return Timeline(
        address=address,
        events=[
            TimelineEvent(
                event_id=e.event_id,
                type=e.type,
                at=iso(e.at) or "",
                campaign=e.campaign,
                campaign_name=e.campaign_name,
                link=e.link,
            )
            for e in entries
        ],
    )
