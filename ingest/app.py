"""The aiohttp ingester: `POST /webhooks/brevo` answers 200 only once the events are in the log."""

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import orjson
from aiohttp import web

from eventlog.port import EventLog, LogRecord, LogUnavailable
from ingest.admission import IngressGuard, overloaded
from ingest.auth import is_authentic
from ingest.config import IngestSettings
from ingest.observe import IngestMetrics, metrics_reader
from ingest.openapi import ingest_openapi_document
from ingest.responses import json_error, json_response
from schemas.brevo import InvalidEvent, canonicalize_all, encode_all, split_body
from schemas.brevo_fields import RawEvent
from schemas.event import CanonicalEvent
from schemas.event_types import EventType
from telemetry.metrics import ObservabilitySettings, Telemetry

log = logging.getLogger(__name__)

E = TypeVar("E")


@dataclass
class IngestCounters:
    """What the ingester accepted since it started; unknown events are kept in the log and counted."""

    accepted: int = 0
    unknown: int = 0
    unknown_names: Counter[str] = field(default_factory=Counter)


SETTINGS = web.AppKey("settings", IngestSettings)
COUNTERS = web.AppKey("counters", IngestCounters)
EVENT_LOG = web.AppKey("event_log", EventLog)
STARTED = web.AppKey("started_monotonic", float)
TELEMETRY = web.AppKey("telemetry", Telemetry)
METRICS = web.AppKey("ingest_metrics", IngestMetrics)
GUARD = web.AppKey("guard", IngressGuard)

_JSON_TYPES = ("application/json",)


async def _read_authentic_body(request: web.Request, *, allow_empty: bool = False) -> bytes | web.Response:
    settings = request.app[SETTINGS]
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        return json_error(413, f"body larger than {settings.max_body_bytes} bytes")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return json_error(413, f"body larger than {settings.max_body_bytes} bytes")
    if not is_authentic(settings, request.headers, body):
        log.warning("rejected webhook with missing or invalid credentials")
        return json_error(401, "missing or invalid signature, bearer token, Basic credentials or header")
    if request.content_type not in _JSON_TYPES and not (allow_empty and not body):
        return json_error(415, "Content-Type must be application/json")
    return body


def _raw_events(body: bytes) -> list[tuple[RawEvent, bool]] | web.Response:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        return json_error(400, f"malformed JSON: {error}")
    try:
        return split_body(parsed)
    except InvalidEvent as error:
        return json_error(400, str(error))


def _each_event(
    raw_events: list[tuple[RawEvent, bool]], make: Callable[[RawEvent, bool], list[E]]
) -> list[E] | web.Response:
    """Every event of the body made by `make`; a 400 naming the first event that cannot be."""
    made: list[E] = []
    for index, (raw, inbound) in enumerate(raw_events):
        try:
            made.extend(make(raw, inbound))
        except InvalidEvent as error:
            return json_error(400, f"event {index}: {error}" if len(raw_events) > 1 else str(error))
    return made


def _canonical_events(body: bytes, received_at: datetime) -> list[CanonicalEvent] | web.Response:
    raw_events = _raw_events(body)
    if isinstance(raw_events, web.Response):
        return raw_events
    return _each_event(raw_events, lambda raw, inbound: canonicalize_all(raw, received_at, inbound=inbound))


async def receive_webhook(request: web.Request) -> web.Response:
    """Verifies, validates, appends every event of the body, then answers with their ids.

    A 503 when the append fails, or has not finished by the deadline (it may still land: Brevo's retry
    is then a duplicate the fold recognizes by its event id).
    """
    arrived = asyncio.get_running_loop().time()  # the deadline counts from here
    body = await _read_authentic_body(request)
    if isinstance(body, web.Response):
        return body
    raw_events = _raw_events(body)
    if isinstance(raw_events, web.Response):
        return raw_events
    received_at = datetime.now(UTC)
    events = _each_event(raw_events, lambda raw, inbound: encode_all(raw, received_at, inbound=inbound))
    if isinstance(events, web.Response):
        return events
    metrics = request.app[METRICS]
    started = metrics.clock()
    records = [LogRecord(event.key, event.value) for event in events]
    try:
        in_time = await request.app[GUARD].append_by_deadline(
            partial(request.app[EVENT_LOG].append, records), arrived
        )
    except LogUnavailable as error:
        metrics.append_failures += 1
        log.error("event log unavailable, asking Brevo to retry: %s", error)
        return overloaded("event log unavailable, retry later")
    if not in_time:
        return overloaded("the event log did not answer in time, retry later")
    metrics.appended(events, started)
    counters = request.app[COUNTERS]
    counters.accepted += len(events)
    for event in events:
        if event.type is EventType.UNKNOWN:
            counters.unknown += 1
            counters.unknown_names[event.source_event[:64]] += 1
            log.info("kept unknown Brevo event %r in the log (not folded)", event.source_event[:64])
    return json_response(
        {"success": True, "accepted": len(events), "event_ids": [e.event_id for e in events]}
    )


async def test_webhook(request: web.Request) -> web.Response:
    """Checks authentication and, when a body is given, what it would become, without touching the log."""
    body = await _read_authentic_body(request, allow_empty=True)
    if isinstance(body, web.Response):
        return body
    received_at = datetime.now(UTC)
    preview: list[dict[str, str | None]] = []
    if body:
        events = _canonical_events(body, received_at)
        if isinstance(events, web.Response):
            return events
        preview = [{"event_id": e.event_id, "type": e.type.value, "address": e.address} for e in events]
    return json_response(
        {
            "success": True,
            "message": "Test webhook processed successfully",
            "receivedAt": received_at.isoformat(),
            "events": preview,
        }
    )


async def health(request: web.Request) -> web.Response:
    """200 with its checks when the log takes appends, 503 when it does not."""
    settings = request.app[SETTINGS]
    if not settings.public_health and not is_authentic(settings, request.headers, b""):
        return json_error(401, "missing or invalid bearer token (or set TAJO_PUBLIC_HEALTH=true)")
    log_health = await request.app[EVENT_LOG].health()
    status = "ok" if log_health.ok else "unavailable"
    return json_response(
        {
            "status": "healthy" if log_health.ok else "unhealthy",
            "timestamp": datetime.now(UTC).isoformat(),
            "uptime_s": round(time.monotonic() - request.app[STARTED], 3),
            # `brevo` says `silent` when no event came for TAJO_SILENCE_ALERT_S: still a 200, the
            # process is fine; the silence is for whoever watches the check.
            "checks": {
                "event_log": {"status": status, "detail": log_health.detail},
                "brevo": request.app[METRICS].silence(),
            },
            "counters": {
                "accepted": request.app[COUNTERS].accepted,
                "unknown": request.app[COUNTERS].unknown,
                "unknown_names": dict(request.app[COUNTERS].unknown_names.most_common(20)),
            },
        },
        200 if log_health.ok else 503,
    )


def create_app(
    settings: IngestSettings,
    event_log: EventLog,
    *,
    observe: ObservabilitySettings | None = None,
    telemetry: Telemetry | None = None,
) -> web.Application:
    """The ingester app; it opens the log on start-up and closes it on clean-up.

    `observe` says who reads `/metrics` and when Brevo counts as silent (TAJO_* variables by default);
    `telemetry` is the registry `/metrics` serves, one of its own by default.
    """
    observe = ObservabilitySettings.from_env(os.environ) if observe is None else observe
    telemetry = Telemetry() if telemetry is None else telemetry
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[EVENT_LOG] = event_log
    app[STARTED] = time.monotonic()
    app[COUNTERS] = IngestCounters()
    app[TELEMETRY] = telemetry
    app[METRICS] = IngestMetrics(telemetry, observe.silence_alert_s, observe.clock)
    app[GUARD] = guard = IngressGuard(settings, telemetry)

    async def open_log(app: web.Application) -> AsyncIterator[None]:
        await app[EVENT_LOG].start()
        yield
        await app[GUARD].drain()  # appends answered 503 at their deadline still land
        await app[EVENT_LOG].stop()

    app.cleanup_ctx.append(open_log)
    count = telemetry.counted
    # Brevo's calls pass the allowlist; every route rate-limits the callers it refuses.
    webhook = guard.guard(receive_webhook, allowlisted=True, admitted=True)
    app.router.add_post("/webhooks/brevo", count("/webhooks/brevo", webhook))
    dry_run = guard.guard(test_webhook, allowlisted=True)
    app.router.add_post("/webhooks/brevo/test", count("/webhooks/brevo/test", dry_run))
    app.router.add_get("/webhooks/brevo/health", count("/webhooks/brevo/health", guard.guard(health)))
    metrics = guard.guard(telemetry.metrics_handler(metrics_reader(settings, observe)))
    app.router.add_get("/metrics", count("/metrics", metrics))
    document = orjson.dumps(ingest_openapi_document())

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    app.router.add_get("/webhooks/brevo/openapi.json", openapi)
    return app
