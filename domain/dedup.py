"""Recognizing a Brevo event seen before, beside the state so the state does not grow with it.

Brevo sends no event id and retries an event it got no 2xx for, for up to about 11 hours; the
canonical `event_id` is a digest of the event's content, so a retry has the id of the original.
Each key keeps, beside its state, the ids of its events whose event time lies within
`HORIZON_MS` of the newest event time it has seen, with the log offset each id was first folded at.
An event is a duplicate when an earlier log record of the same key had its id within the horizon.

The rule reads only the key's own events in log order, so it decides the same way on every log,
whatever the partitioning or the batching; an entry that left the horizon can never count again,
so dropping it from storage changes no decision. A re-read of the same record (same offset) after a
crash is not a duplicate of itself: the state's own position (`domain.state.tracked`) says whether
that record was folded already.
"""

import struct
from dataclasses import dataclass, field

HOUR_MS = 3_600_000
# Twice Brevo's retry horizon of about 11 hours of event time.
HORIZON_MS = 24 * HOUR_MS

_HEAD = struct.Struct(">qq")  # newest event time (_NONE when none), offset of the last record folded
_NONE = -(2**63)
_ENTRY = struct.Struct(">QQqq")  # event id (128 bits, as two halves), event time, offset first folded at
_LOW = (1 << 64) - 1


def fingerprint(event_id: str) -> int:
    """The event id (32 hex digits) as a number."""
    return int(event_id, 16)


@dataclass(slots=True)
class SeenEvents:
    """The recent event ids of one key, by fingerprint: their event time, and the offset first folded at.

    The two are kept in two dicts rather than one of pairs: a pair per event folded would be one more
    object for the garbage collector to count and look at.
    """

    newest_at: int | None = None
    last_offset: int = -1
    entries: dict[int, int] = field(default_factory=dict)  # fingerprint -> event time
    offsets: dict[int, int] = field(default_factory=dict)  # fingerprint -> offset first folded at
    horizon_ms: int = HORIZON_MS
    oldest_at: int | None = None  # of the entries kept
    _encoded: bytes = b""  # the entries as last encoded, so an encode appends only what is new
    _new: list[int] = field(default_factory=list)

    def is_duplicate(self, event_id: str, offset: int) -> bool:
        """True when an earlier record of this key, still within the horizon, had this id."""
        fp = fingerprint(event_id)
        at = self.entries.get(fp)
        if at is None or self.offsets[fp] >= offset:
            return False
        return self.newest_at is None or at >= self.newest_at - self.horizon_ms

    def add(self, event_id: str, at: int, offset: int) -> None:
        """Remembers a folded event (the first record of an id wins)."""
        self.admit(event_id, at, offset)

    def admit(self, event_id: str, at: int, offset: int) -> bool:
        """`not is_duplicate(event_id, offset)`, then `add(event_id, at, offset)`: reads the id once.

        True when the event is no duplicate (it is to be folded).
        """
        fp = int(event_id, 16)  # fingerprint(event_id), inline: this runs for every event folded
        entries = self.entries
        seen_at = entries.get(fp)
        newest = self.newest_at
        if seen_at is None:
            fresh = True
            entries[fp] = at
            self.offsets[fp] = offset
            self._new.append(fp)
            oldest = self.oldest_at
            if oldest is None or at < oldest:
                self.oldest_at = at
        else:
            fresh = self.offsets[fp] >= offset or (newest is not None and seen_at < newest - self.horizon_ms)
        if newest is None or at > newest:
            self.newest_at = at
        if offset > self.last_offset:  # noqa: PLR1730 - cheaper than max() on this hot path
            self.last_offset = offset
        return fresh

    def discard(self, event_id: str) -> None:
        """Forgets an id (an event set aside unfolded: a later record of it is no duplicate)."""
        fp = fingerprint(event_id)
        if self.entries.pop(fp, None) is None:
            return
        del self.offsets[fp]
        self.oldest_at = min(self.entries.values(), default=None)
        self._encoded, self._new = b"", list(self.entries)  # encoded again in full: rare

    def expire(self) -> None:
        """Forgets the ids that left the horizon (they can no longer make a duplicate)."""
        if self.newest_at is None or self.oldest_at is None:
            return
        oldest = self.newest_at - self.horizon_ms
        if self.oldest_at < oldest:
            self.entries = {fp: at for fp, at in self.entries.items() if at >= oldest}
            self.offsets = {fp: self.offsets[fp] for fp in self.entries}
            self.oldest_at = min(self.entries.values(), default=None)
            self._encoded, self._new = b"", list(self.entries)

    def encode(self) -> bytes:
        """Compact bytes: a 16-byte head, then 32 bytes per remembered id (the expired ones dropped)."""
        self.expire()
        if self._new:
            get = self.entries.get
            offsets = self.offsets
            pack = _ENTRY.pack
            packed = [self._encoded]
            for fp in self._new:
                at = get(fp)
                if at is not None:
                    packed.append(pack(fp >> 64, fp & _LOW, at, offsets[fp]))
            self._encoded = b"".join(packed)
            self._new = []
        newest = _NONE if self.newest_at is None else self.newest_at
        return _HEAD.pack(newest, self.last_offset) + self._encoded

    @classmethod
    def decode(cls, data: bytes | None, horizon_ms: int = HORIZON_MS) -> "SeenEvents":
        """Reads what `encode` wrote; None gives an empty record."""
        if not data:
            return cls(horizon_ms=horizon_ms)
        newest, last_offset = _HEAD.unpack_from(data)
        body = data[_HEAD.size :]
        entries: dict[int, int] = {}
        offsets: dict[int, int] = {}
        for high, low, at, off in _ENTRY.iter_unpack(body):
            fp = (high << 64) | low
            entries[fp] = at
            offsets[fp] = off
        oldest = min(entries.values(), default=None)
        newest_at = None if newest == _NONE else newest
        return cls(newest_at, last_offset, entries, offsets, horizon_ms, oldest, body)
