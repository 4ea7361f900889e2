"""The canonical event that goes into the log, the Brevo dialects it is made from, and its JSON Schema."""

from schemas.brevo import InvalidEvent, canonicalize, canonicalize_all, split_body
from schemas.event import CanonicalEvent
from schemas.event_types import EventType

__all__ = ["CanonicalEvent", "EventType", "InvalidEvent", "canonicalize", "canonicalize_all", "split_body"]
