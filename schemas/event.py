"""The canonical event: one Brevo event as it is kept, whole and immutable, in the log."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from schemas.event_types import EventType

SCHEMA_VERSION = 1
CAMPAIGN_KEY_PREFIX = "campaign:"


class CanonicalEvent(BaseModel):
    """A Brevo event in canonical form, keyed by the customer address it concerns."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="CanonicalEvent")

    schema_version: Annotated[int, Field(ge=1)] = SCHEMA_VERSION
    event_id: Annotated[
        str,
        Field(
            pattern=r"^[0-9a-f]{32}$",
            description="De-duplication key: a digest of the event's content (Brevo sends no event id).",
        ),
    ]
    type: EventType
    source_event: Annotated[
        str, Field(description="The event name exactly as Brevo sent it (`event` or `msg_status`).")
    ]
    address: Annotated[
        str | None,
        Field(description="The customer: email lower-cased, or phone in E.164; null when none applies."),
    ]
    campaign: Annotated[
        str | None,
        Field(description="The Brevo campaign id (`camp_id`) the event belongs to, if any."),
    ] = None
    occurred_at: Annotated[
        AwareDatetime, Field(description="When it happened (UTC): `ts_epoch` ms, else `ts_event`/`ts` s.")
    ]
    received_at: Annotated[AwareDatetime, Field(description="When the ingester accepted it (UTC).")]
    payload: Annotated[dict[str, JsonValue], Field(description="The Brevo payload, kept whole.")]

    @property
    def key(self) -> str:
        """The partition key: the address, else `campaign:<id>` for a campaign's own events, else the id."""
        return partition_key(self.address, self.campaign, self.type, self.event_id)


def partition_key(address: str | None, campaign: str | None, kind: EventType, event_id: str) -> str:
    """The address, else `campaign:<id>` for a campaign's own events, else the event id."""
    if address is not None:
        return address
    if campaign is not None and kind.value.startswith("campaign."):
        return CAMPAIGN_KEY_PREFIX + campaign
    return event_id


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def epoch_ms(moment: datetime) -> int:
    """A moment as integer milliseconds since the epoch (exact, no float rounding)."""
    return (moment - _EPOCH) // _MS


def from_epoch_ms(ms: int) -> datetime:
    """Integer milliseconds since the epoch as an aware UTC datetime."""
    return _EPOCH + ms * _MS


def encode_event(event: CanonicalEvent) -> bytes:
    """The event as it is stored in the log: compact JSON bytes."""
    return event.__pydantic_serializer__.to_json(event)


def decode_event(data: bytes) -> CanonicalEvent:
    """An event read back from the log, validated against the model."""
    return CanonicalEvent.model_validate_json(data)
