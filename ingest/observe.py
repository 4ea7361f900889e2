"""What the ingester counts for `/metrics`, and whether Brevo has gone silent."""

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from ingest.auth import is_authentic
from ingest.config import IngestSettings
from schemas.brevo import EncodedEvent
from schemas.event_types import EventType
from telemetry.metrics import (
    APPEND_BUCKETS_S,
    Authorized,
    Histogram,
    ObservabilitySettings,
    Telemetry,
    bears,
)

Clock = Callable[[], float]


class IngestMetrics:
    """Events accepted by type, appends timed, when the last event came: plain numbers, read at scrapes."""

    def __init__(
        self, telemetry: Telemetry, silence_alert_s: float, clock: Clock = time.perf_counter
    ) -> None:
        self.by_type: dict[EventType, int] = dict.fromkeys(EventType, 0)
        self.append_seconds = Histogram(APPEND_BUCKETS_S)
        self.append_failures = 0
        self.clock = clock  # monotonic: times appends, and the silence
        self.started_at = clock()
        self.last_event_at: float | None = None  # on `clock`
        self.silence_alert_s = silence_alert_s
        telemetry.collect(self._families)

    def appended(self, events: Sequence[EncodedEvent], started: float) -> None:
        """A body's events are in the log, the append having started at `started` (on `clock`)."""
        now = self.clock()
        seconds = now - started
        histogram = self.append_seconds  # Histogram.observe, inline: a call less per webhook
        histogram.counts[bisect_left(histogram.bounds, seconds)] += 1
        histogram.sum += seconds
        by_type = self.by_type
        for event in events:
            by_type[event.type] += 1
        self.last_event_at = now

    def wall_time(self, moment: float) -> float:
        """A moment on `clock` as a Unix time."""
        return time.time() - (self.clock() - moment)

    def silence(self) -> dict[str, Any]:
        """The `brevo` health check: `silent` once no event has come for the threshold, else `ok`.

        Before the first event, the silence counts from the start.
        """
        now = self.clock()
        since = self.started_at if self.last_event_at is None else self.last_event_at
        silent_for = max(0.0, now - since)
        last = None if self.last_event_at is None else self.wall_time(self.last_event_at)
        return {
            "status": "silent" if silent_for >= self.silence_alert_s else "ok",
            "last_event_at": None if last is None else datetime.fromtimestamp(last, UTC).isoformat(),
            "silent_for_s": round(silent_for, 3),
            "threshold_s": self.silence_alert_s,
        }

    def _families(self) -> Iterator[Metric]:
        accepted = CounterMetricFamily(
            "tajo_events_accepted", "events appended to the log, by canonical type", labels=["type"]
        )
        for event_type, count in self.by_type.items():
            accepted.add_metric([event_type.value], count)
        yield accepted
        yield CounterMetricFamily(
            "tajo_events_unknown",
            "events of a type Brevo added since (kept, not folded)",
            value=self.by_type[EventType.UNKNOWN],
        )
        yield self.append_seconds.family("tajo_append_seconds", "how long appending a body's events took")
        yield CounterMetricFamily(
            "tajo_append_failures",
            "bodies answered 503: the log did not take them",
            value=self.append_failures,
        )
        last = GaugeMetricFamily(
            "tajo_last_event_timestamp_seconds", "when the newest event was accepted (0: none since start)"
        )
        last.add_metric([], 0.0 if self.last_event_at is None else self.wall_time(self.last_event_at))
        yield last
        yield GaugeMetricFamily(
            "tajo_brevo_silent_seconds",
            "seconds since the last event came (since start when none has)",
            value=self.silence()["silent_for_s"],
        )


def metrics_reader(settings: IngestSettings, observe: ObservabilitySettings) -> Authorized | None:
    """Who reads the ingester's `/metrics`: anyone when public, else the bearers of TAJO_API_TOKEN.

    On the standalone ingester, the webhook's own credentials read it too (as they read its health).
    """
    if observe.public_metrics:
        return None
    token = observe.api_token
    webhook_auth = observe.webhook_auth_reads_metrics

    def authorized(request: web.Request) -> bool:
        if token is not None and bears(request, token):
            return True
        return webhook_auth and is_authentic(settings, request.headers, b"")

    return authorized
