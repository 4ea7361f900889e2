"""The upcaster: a stored event of an earlier schema version, as the current version has it.

Version 1 kept only the raw payload beside the keys; the fold parsed the payload on every replay.
Version 2 reads every field the fold needs once, at ingest, into typed fields. A version-1 event
gets them from its payload with the readers of `schemas.brevo_fields`, which give exactly what the
version-1 fold read; the committed version-1 fixture log (`tests/fixtures/log_v1.jsonl`) holds
them to it. When a reader changes, the schema version goes up and this module keeps the old one.
"""

from collections.abc import Callable

from pydantic import JsonValue

from schemas.brevo_fields import typed_fields
from schemas.event_types import EventType

StoredEvent = dict[str, JsonValue]


class UnknownSchemaVersion(ValueError):
    """A stored event of a schema version this code does not know (written by a newer version?)."""


def _v1_to_v2(event: StoredEvent) -> StoredEvent:
    payload = event.get("payload")
    kind = event.get("type")
    if not isinstance(payload, dict) or not isinstance(kind, str):
        raise ValueError("a version-1 event needs its `type` and its `payload` object")
    fields: dict[str, JsonValue] = dict(typed_fields(payload, EventType(kind)))  # type: ignore[arg-type]
    return {**event, **fields, "schema_version": 2}


# Each step takes an event of its version to the next one.
STEPS: dict[int, Callable[[StoredEvent], StoredEvent]] = {1: _v1_to_v2}
CURRENT = max(STEPS) + 1


def upcast(event: StoredEvent) -> StoredEvent:
    """The stored event brought up to the current schema version, step by step (a new dict)."""
    version = event.get("schema_version", 1)
    while version != CURRENT:
        step = STEPS.get(version) if isinstance(version, int) else None
        if step is None:
            raise UnknownSchemaVersion(f"unknown schema_version {version!r}")
        event = step(event)
        version = event["schema_version"]
    return event
