"""The canonical event: one Brevo event as it is kept, whole and immutable, in the log.

Besides the raw payload, kept whole, a canonical event carries every field the fold needs, read
once at ingest (`schemas.brevo`): the fold never parses a payload, so a parser change cannot
silently rewrite history on the next replay. Events stored by an earlier schema version are
brought up to this one when they are read (`schemas.upcast`).
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from schemas.event_types import EventType
from schemas.upcast import upcast

SCHEMA_VERSION: Final = 2
CAMPAIGN_KEY_PREFIX = "campaign:"


# The typed fields an event has no value for are left out of the stored JSON: most apply to one family.


def _none(value: object) -> bool:
    return value is None


def _empty(value: tuple[object, ...]) -> bool:
    return not value


def _false(value: bool) -> bool:
    return not value


class CanonicalEvent(BaseModel):
    """A Brevo event in canonical form, keyed by the customer address it concerns."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="CanonicalEvent")

    schema_version: Annotated[
        Literal[2], Field(description="The version of this model; older stored ones are upcast when read.")
    ] = SCHEMA_VERSION
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
    campaign_name: Annotated[
        str | None,
        Field(
            exclude_if=_none, description="Email and campaign events: the campaign's name, else the subject."
        ),
    ] = None
    tags: Annotated[
        tuple[str, ...], Field(exclude_if=_empty, description="Email events: the tags (`tags`, or `tag`).")
    ] = ()
    link: Annotated[
        str | None, Field(exclude_if=_none, description="Email events: the clicked URL (`link` or `URL`).")
    ] = None
    reason: Annotated[
        str | None,
        Field(
            exclude_if=_none,
            description="Email and SMS events: why it bounced or failed (`reason`, else `msg_status`).",
        ),
    ] = None
    text: Annotated[str | None, Field(exclude_if=_none, description="SMS events: the text of a reply.")] = (
        None
    )
    email: Annotated[
        str | None,
        Field(
            exclude_if=_none, description="Contact events: the contact's email, lower-cased, if it has one."
        ),
    ] = None
    phone: Annotated[
        str | None,
        Field(exclude_if=_none, description="Contact events: the contact's phone in E.164, if it has one."),
    ] = None
    list_ids: Annotated[
        tuple[int, ...],
        Field(exclude_if=_empty, description="Contact events: the lists it names, sorted, once each."),
    ] = ()
    email_blacklisted: Annotated[
        bool | None,
        Field(exclude_if=_none, description="Contact events: `emailBlacklisted`, when the event says."),
    ] = None
    payload: Annotated[dict[str, JsonValue], Field(description="The Brevo payload, kept whole.")]
    resubmitted: Annotated[
        bool,
        Field(
            exclude_if=_false,
            description=(
                "A dead-lettered event put back in the log by `tajo-events dlq retry`: the fold takes it only"
                " while the original stands set aside (its id among the customer's dead letters), so a"
                " replay in which the original folded drops the copy."
            ),
        ),
    ] = False

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
    """An event read back from the log, of any known schema version, as the current version."""
    raw = orjson.loads(data)
    if isinstance(raw, dict) and raw.get("schema_version") != SCHEMA_VERSION:
        return CanonicalEvent.model_validate(upcast(raw))
    return CanonicalEvent.model_validate_json(data)
