"""Metrics in the Prometheus text format, one registry per app, counted per request in well under 1 µs.

The request path only adds to plain ints (a dict entry per route and status, a histogram's bucket); the
registry reads them when `/metrics` is scraped, through collectors that build prometheus-client's metric
families. prometheus-client's own Counter.inc and Histogram.observe take a lock each time: 0.55 µs and
1.1 µs here, 2-3 µs a webhook with the three updates it needs, against some 0.4 µs this way. Everything
runs on the event loop, so plain ints need no lock.
"""

import hmac
import itertools
import logging
import os
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from telemetry.context import CURRENT_REQUEST

log = logging.getLogger(__name__)

R = TypeVar("R", bound=web.StreamResponse)
Refresh = Callable[[], Awaitable[None]]
Collect = Callable[[], Iterable[Metric]]
Authorized = Callable[[web.Request], bool]

DEFAULT_SILENCE_ALERT_S = 3600.0
# from a group commit's few milliseconds to the 3 s append timeout and past it
APPEND_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class TelemetryConfigError(ValueError):
    """A TAJO_* observability variable the services cannot use."""


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes"}


@dataclass(frozen=True, slots=True)
class ObservabilitySettings:
    """Who may read `/metrics`, and how long Brevo may stay silent before the health check says so."""

    public_metrics: bool = False  # TAJO_PUBLIC_METRICS: `/metrics` answers without a token
    silence_alert_s: float = DEFAULT_SILENCE_ALERT_S  # TAJO_SILENCE_ALERT_S
    api_token: str | None = field(default=None, repr=False)  # TAJO_API_TOKEN: reads `/metrics`
    webhook_auth_reads_metrics: bool = True  # the standalone ingester: Brevo's credentials read it too
    clock: Callable[[], float] = field(default=time.perf_counter, repr=False, compare=False)  # monotonic, s

    def __post_init__(self) -> None:
        if not 0 < self.silence_alert_s < float("inf"):
            raise TelemetryConfigError("TAJO_SILENCE_ALERT_S must be a positive number of seconds")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "ObservabilitySettings":
        """Settings from TAJO_PUBLIC_METRICS, TAJO_SILENCE_ALERT_S and TAJO_API_TOKEN."""
        try:
            silence = float(env.get("TAJO_SILENCE_ALERT_S", DEFAULT_SILENCE_ALERT_S))
        except ValueError as error:
            raise TelemetryConfigError("TAJO_SILENCE_ALERT_S must be a number of seconds") from error
        return cls(
            public_metrics=_flag(env, "TAJO_PUBLIC_METRICS"),
            silence_alert_s=silence,
            api_token=env.get("TAJO_API_TOKEN") or None,
        )


def bears(request: web.Request, token: str) -> bool:
    """True when the request's `Authorization` is `Bearer <token>` (any case, spaces around the token)."""
    header = request.headers.get("Authorization")
    if header is None or header[:7].lower() != "bearer ":
        return False
    # As bytes: aiohttp decodes a non-UTF-8 byte to a lone surrogate, which plain encode() raises on.
    presented = header[7:].strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(presented, token.encode("utf-8", "surrogateescape"))


class Histogram:
    """A histogram of plain ints: observing is a bisection and two additions."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is above every bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Counts one value, in the first bucket whose bound is at least it."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        """How many values were observed."""
        return sum(self.counts)

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        """The histogram as prometheus-client exposes one (cumulative buckets, `+Inf` last)."""
        cumulative = list(itertools.accumulate(self.counts))
        buckets = [(_go_float(b), float(c)) for b, c in zip(self.bounds, cumulative, strict=False)]
        buckets.append(("+Inf", float(cumulative[-1])))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.sum)


def _go_float(value: float) -> str:
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]  # how prometheus-client writes `le`
    return text


class _Collector:
    def __init__(self, collect: Collect) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()


class Telemetry:
    """An app's registry, its request counts by route and status, and what refreshes values before a scrape.

    `under(prefix)` gives a view for a sub-app mounted at `prefix`: same registry and counts, routes named
    with the prefix.
    """

    def __init__(self, *, prefix: str = "", _shared: "Telemetry | None" = None) -> None:
        self.prefix = prefix
        if _shared is None:
            self.registry = CollectorRegistry(auto_describe=False)
            self._requests: dict[str, dict[int, int]] = {}
            self._refreshers: list[Refresh] = []
            self.registry.register(_Collector(self._request_families))
        else:
            self.registry = _shared.registry
            self._requests = _shared._requests
            self._refreshers = _shared._refreshers

    def under(self, prefix: str) -> "Telemetry":
        """A view of this telemetry for a sub-app mounted at `prefix` (`/api`)."""
        return Telemetry(prefix=self.prefix + prefix.rstrip("/"), _shared=self)

    def collect(self, collect: Collect) -> None:
        """Adds metric families `collect` builds at each scrape."""
        self.registry.register(_Collector(collect))

    def before_scrape(self, refresh: Refresh) -> None:
        """Runs `refresh` (reading what is only reached by awaiting) before each scrape."""
        self._refreshers.append(refresh)

    def counted(
        self, route: str, handler: Callable[[web.Request], Awaitable[R]]
    ) -> Callable[[web.Request], Awaitable[R]]:
        """`handler`, counting its answers by status and making the request known to log lines."""
        counts = self.counts_for(route)

        async def counted_handler(request: web.Request) -> R:
            token = CURRENT_REQUEST.set(request)
            try:
                response = await handler(request)
            except web.HTTPException as error:
                counts[error.status] = counts.get(error.status, 0) + 1
                raise
            except Exception:
                counts[500] = counts.get(500, 0) + 1
                raise
            finally:
                CURRENT_REQUEST.reset(token)
            status = response.status
            try:
                counts[status] += 1
            except KeyError:  # the route's first answer with this status
                counts[status] = 1
            return response

        return counted_handler

    def counts_for(self, route: str) -> dict[int, int]:
        """The counts of a route's answers by status, for a handler that counts them itself.

        The handler adds 1 to `counts[status]` per answer.
        """
        return self._requests.setdefault(self.prefix + route, {})

    def requests(self, route: str) -> dict[int, int]:
        """The answers counted for a route, by status (for tests and health)."""
        return dict(self._requests.get(route, {}))

    def _request_families(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "tajo_http_requests", "HTTP requests answered, by route and status", labels=["route", "status"]
        )
        for route, counts in self._requests.items():
            for status, count in sorted(counts.items()):
                family.add_metric([route, str(status)], count)
        yield family

    async def exposition(self) -> bytes:
        """The registry in the Prometheus text format, values refreshed first."""
        for refresh in self._refreshers:
            try:
                await refresh()
            except Exception as error:  # a scrape shows what it can; the refreshed values go stale
                log.warning("a metrics refresh failed: %r", error)
        return generate_latest(self.registry)

    def metrics_handler(
        self, authorized: Authorized | None
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """`GET /metrics`: 401 unless `authorized` (None: public) lets the request read it."""

        async def metrics(request: web.Request) -> web.Response:
            if authorized is not None and not authorized(request):
                body = b'{"error":"Unauthorized","message":"missing or invalid bearer token '
                body += b'(or set TAJO_PUBLIC_METRICS=true)"}'
                return web.Response(status=401, body=body, content_type="application/json")
            return web.Response(
                body=await self.exposition(), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}
            )

        return metrics
