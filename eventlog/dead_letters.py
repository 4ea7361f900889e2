"""Dead letters as both logs keep them: what was set aside, from where, when and why, and whether retried.

An event the fold set aside (`domain.dead_letters`) and an action the effector gave up on are each a
`DeadEntry`. On Kafka they are records of `<events topic>.dead` and `<actions topic>.dead` whose value
is the original record's, unchanged, and whose headers say the rest (as Kafka Connect's dead letter
queues do); a retry adds a record to `<dead-letter topic>.retried` (compacted: the key is the entry's
offset, the value when it was retried), so the dead-letter topic holds only dead letters. On the
embedded log they are rows of the state file (`streams.embedded`).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import orjson

from telemetry.logs import Redactor

Kind = Literal["event", "action"]
Headers = list[tuple[str, bytes]]

KIND = "tajo.dlq.kind"
ERROR_TYPE = "tajo.dlq.error.type"
ERROR = "tajo.dlq.error"
SOURCE_TOPIC = "tajo.dlq.source.topic"
SOURCE_PARTITION = "tajo.dlq.source.partition"
SOURCE_OFFSET = "tajo.dlq.source.offset"
AT = "tajo.dlq.at"  # epoch ms when it was set aside
RETRIED_CONFIG = {"cleanup.policy": "compact"}  # of a `.retried` topic: one record per entry suffices


_REDACT = Redactor()  # tokens, signatures, API keys and full email addresses, as in the logs


def safe_error(message: str) -> str:
    """An error message as a dead letter keeps it: no token, signature, API key or full email address."""
    return _REDACT(message)


def dead_topic(topic: str) -> str:
    """The dead-letter topic of a topic (`tajo.events` -> `tajo.events.dead`)."""
    return f"{topic}.dead"


def retried_topic(topic: str) -> str:
    """Where the retries of a topic's dead letters are noted (`tajo.events` -> `tajo.events.dead.retried`)."""
    return f"{dead_topic(topic)}.retried"


@dataclass(frozen=True, slots=True)
class DeadEntry:
    """One dead letter, as `tajo-events dlq` lists, shows and retries it."""

    id: str  # `event:<n>` or `action:<n>`, n its place in the dead-letter topic or table
    kind: Kind
    at_ms: int | None
    error_type: str
    error: str
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    key: bytes
    value: bytes
    retried_at_ms: int | None = None

    @property
    def summary(self) -> str:
        """The error in a line."""
        first = self.error.splitlines()[0] if self.error else ""
        return f"{self.error_type}: {first}" if first else self.error_type

    def document(self) -> dict[str, object]:
        """The entry in full, as JSON-ready values (the record itself decoded when it is JSON)."""
        try:
            record: object = orjson.loads(self.value)
        except orjson.JSONDecodeError:
            record = self.value.decode("utf-8", "replace")
        return {
            "id": self.id,
            "kind": self.kind,
            "at_ms": self.at_ms,
            "error_type": self.error_type,
            "error": self.error,
            "source": {
                "topic": self.source_topic,
                "partition": self.source_partition,
                "offset": self.source_offset,
            },
            "key": self.key.decode("utf-8", "replace"),
            "retried_at_ms": self.retried_at_ms,
            "record": record,
        }


def headers_of(  # noqa: PLR0913 - each header is a field of the dead letter
    kind: Kind,
    *,
    error_type: str,
    error: str,
    source_topic: str,
    source_partition: int | None,
    source_offset: int | None,
    at_ms: int,
) -> Headers:
    """The headers of a dead-letter record."""
    headers = [
        (KIND, kind.encode()),
        (ERROR_TYPE, error_type.encode()),
        (ERROR, error.encode()),
        (SOURCE_TOPIC, source_topic.encode()),
        (AT, str(at_ms).encode()),
    ]
    if source_partition is not None:
        headers.append((SOURCE_PARTITION, str(source_partition).encode()))
    if source_offset is not None:
        headers.append((SOURCE_OFFSET, str(source_offset).encode()))
    return headers


class SetAside(Protocol):
    """An event the fold set aside, as `domain.dead_letters.DeadLetter` describes it."""

    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def error_type(self) -> str: ...
    @property
    def error(self) -> str: ...


def event_headers(letter: SetAside, source_topic: str, at_ms: int) -> Headers:
    """The headers of an event's dead-letter record: its error (redacted) and where it came from."""
    return headers_of(
        "event",
        error_type=letter.error_type,
        error=safe_error(letter.error),
        source_topic=source_topic,
        source_partition=letter.partition,
        source_offset=letter.offset,
        at_ms=at_ms,
    )


def header_map(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    """A record's headers by name (the last of a name wins), as text."""
    return {name: bytes(value or b"").decode("utf-8", "replace") for name, value in headers or ()}


def _int(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def entry_of(  # noqa: PLR0913 - a record's coordinates and contents
    kind: Kind, offset: int, *, timestamp_ms: int | None, key: bytes, value: bytes, headers: dict[str, str]
) -> DeadEntry:
    """The entry a dead-letter record holds; a record from before these headers says only what it is."""
    return DeadEntry(
        id=f"{kind}:{offset}",
        kind=kind,
        at_ms=_int(headers.get(AT)) or timestamp_ms,
        error_type=headers.get(ERROR_TYPE, "unknown"),
        error=headers.get(ERROR, ""),
        source_topic=headers.get(SOURCE_TOPIC),
        source_partition=_int(headers.get(SOURCE_PARTITION)),
        source_offset=_int(headers.get(SOURCE_OFFSET)),
        key=key,
        value=value,
    )


def retry_note(offset: int, at_ms: int) -> tuple[bytes, bytes]:
    """The key and value of the record that notes a retry of the entry at `offset`."""
    return str(offset).encode(), str(at_ms).encode()


def read_retry_note(key: bytes | None, value: bytes | None) -> tuple[int, int] | None:
    """The entry offset and retry time a note holds; None for a record that is not one."""
    offset, at_ms = (
        _int((key or b"").decode("ascii", "replace")),
        _int((value or b"").decode("ascii", "replace")),
    )
    return None if offset is None or at_ms is None else (offset, at_ms)
