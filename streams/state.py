"""A customer's engagement state: what the fold keeps per address, and its byte encoding."""

from dataclasses import asdict, dataclass, field

import orjson

# How many recent event ids a customer's state remembers to drop duplicates. Brevo retries within
# about 11 hours and a restarted worker re-reads only uncommitted offsets, so a customer would need
# more events than this inside that window for a duplicate to slip past.
SEEN_WINDOW = 1024


@dataclass(frozen=True, slots=True)
class EngagementState:
    """Counts and last-seen times (epoch milliseconds) of one customer's engagement."""

    address: str
    delivered: int = 0
    opens: int = 0
    unique_opens: int = 0
    clicks: int = 0
    last_delivered_at: int | None = None
    last_opened_at: int | None = None
    last_clicked_at: int | None = None
    score: int = 0
    seen: tuple[str, ...] = field(default=(), repr=False)


def encode_state(state: EngagementState) -> bytes:
    """The state as compact JSON bytes, as stored in tables and changelogs."""
    return orjson.dumps(asdict(state))


def decode_state(data: bytes) -> EngagementState:
    """A state read back from its JSON bytes."""
    fields = orjson.loads(data)
    fields["seen"] = tuple(fields.get("seen", ()))
    return EngagementState(**fields)
