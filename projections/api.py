"""The projections HTTP API: customers' loyalty views, campaign stats, suppressions, alerts and inbox.

Every endpoint but `GET /openapi.json` needs `Authorization: Bearer <token>`.
"""

import hmac
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from aiohttp import web
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from pydantic import BaseModel

from projections.holder import Projection, ProjectionHolder
from projections.log_tail import LogTail
from projections.openapi import Param, Route, openapi_document
from projections.overview import NoStatus, Overview, PipelineStatus, Snapshot, overview
from projections.store import ReadModel
from projections.timeline import Timeline, timeline_view
from projections.views import AlertFeed, CampaignList, CampaignStats, CustomerView, InboxFeed, SuppressionList
from schemas.brevo_fields import normalize_email, normalize_phone
from schemas.event import epoch_ms
from telemetry.metrics import ObservabilitySettings, Telemetry, bears

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Feeder(Protocol):
    """Keeps the store current while the API runs."""

    async def start(self) -> None:
        """Starts feeding."""

    async def stop(self) -> None:
        """Stops feeding."""


class NoFeeder:
    """A feeder with nothing to feed."""

    async def start(self) -> None:
        """Does nothing."""

    async def stop(self) -> None:
        """Does nothing."""


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Insight:
    """What the overview and timelines read beside the read model: the log's tail, the runtime's status."""

    tail: LogTail = field(default_factory=LogTail)
    feeder: Feeder = field(default_factory=NoFeeder)
    status: PipelineStatus = field(default_factory=NoStatus)
    clock_ms: Callable[[], int] = _wall_clock_ms  # the wall clock: the overview's "now"


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The bearer token services present to read projections."""

    api_token: str = field(repr=False)


HOLDER = web.AppKey("holder", ProjectionHolder)
PINNED = web.RequestKey("projection", Projection)
VERSION_HEADER = "X-Projection-Version"
FEEDER = web.AppKey("feeder", Feeder)
API_SETTINGS = web.AppKey("api_settings", ApiSettings)
OPENAPI = web.AppKey("openapi", bytes)
TELEMETRY = web.AppKey("telemetry", Telemetry)
INSIGHT = web.AppKey("insight", Insight)
SILENCE_ALERT_S = web.AppKey("silence_alert_s", float)

Handler = Callable[[web.Request], Awaitable[web.Response]]


class BadRequest(Exception):
    """A parameter the API cannot read."""


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _model(model: BaseModel) -> web.Response:
    return _json(model.model_dump(mode="json"))


def _error(status: int, error: str, message: str) -> web.Response:
    return _json({"error": error, "message": message}, status)


def _authorized(header: str | None, token: bytes, expected: bytes | None) -> bool:
    """True when an Authorization header bears the token (`Bearer`, any case, spaces around the token).

    `expected` is the header as clients send it (`Bearer <token>`): that one takes a single comparison.
    """
    if header is None:
        return False
    if expected is not None and hmac.compare_digest(header.encode("utf-8", "surrogateescape"), expected):
        return True
    if not header.lower().startswith("bearer "):
        return False
    # As bytes: aiohttp decodes a non-UTF-8 byte to a lone surrogate, which plain encode() raises on.
    return hmac.compare_digest(header[7:].strip().encode("utf-8", "surrogateescape"), token)


def _serving(
    handler: Handler, holder: ProjectionHolder, token: str | None, counts: dict[int, int]
) -> Handler:
    """`handler` served from the projection in service when the request arrived, saying which one.

    Unless `token` is None (a public route), only a request bearing it is answered. Each answer is
    counted in `counts` by status (here rather than in a wrapper: a coroutine layer less per read).
    """
    secret = (token or "").encode("utf-8", "surrogateescape")
    # a token with spaces around it is never presented as is: the header is stripped before comparing
    plain = token is not None and token == token.strip()
    expected = f"Bearer {token}".encode("utf-8", "surrogateescape") if plain else None

    async def serve(request: web.Request) -> web.Response:
        projection = holder.current
        request[PINNED] = projection
        if token is not None and not _authorized(request.headers.get("Authorization"), secret, expected):
            response = _error(401, "Unauthorized", "missing or invalid bearer token")
        else:
            try:
                response = await handler(request)
            except BadRequest as error:
                response = _error(400, "Bad Request", str(error))
            except Exception:
                counts[500] = counts.get(500, 0) + 1
                raise
        response.headers[VERSION_HEADER] = str(projection.version)
        counts[response.status] = counts.get(response.status, 0) + 1
        return response

    return serve


def normalize_address(text: str) -> str | None:
    """An address from a URL: an email (any case) or a phone number, in canonical form."""
    return normalize_email(text) if "@" in text else normalize_phone(text)


def _limit(request: web.Request) -> int:
    text = request.query.get("limit", str(DEFAULT_LIMIT))
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(f"`limit` must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _before(request: web.Request) -> int | None:
    text = request.query.get("before")
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest("`before` must be an ISO-8601 time, like 2024-05-01T12:00:00Z") from None
    return epoch_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


async def get_customer(request: web.Request) -> web.Response:
    """The merged loyalty view of one customer; 404 when unknown or deleted."""
    address = normalize_address(request.match_info["address"])
    if address is None:
        raise BadRequest("not an email address or phone number")
    body = _store(request).customer_json(address)
    if body is None:
        return _error(404, "Not Found", f"no customer {address}")
    return web.Response(body=body, content_type="application/json")


async def get_timeline(request: web.Request) -> web.Response:
    """The latest events of one customer (its email's and linked phone's), newest first; 404 as the view."""
    address = normalize_address(request.match_info["address"])
    if address is None:
        raise BadRequest("not an email address or phone number")
    addresses = _store(request).shown_addresses(address)
    if addresses is None:
        return _error(404, "Not Found", f"no customer {address}")
    timelines = request.app[INSIGHT].tail.timelines
    return _model(timeline_view(address, timelines.of(*addresses)))


async def get_overview(request: web.Request) -> web.Response:
    """The pipeline at a glance: the log's last hour, the fold's lag, actions, Brevo's silence, health."""
    insight = request.app[INSIGHT]
    status = insight.status
    snapshot = Snapshot(
        now_ms=insight.clock_ms(),
        activity=insight.tail.activity,
        fold=await status.fold(),
        actions=await status.actions(),
        services=await status.services(),
        silence_threshold_s=request.app[SILENCE_ALERT_S],
        projection_version=request[PINNED].version,
    )
    return _model(overview(snapshot))


async def get_campaigns(request: web.Request) -> web.Response:
    """Every campaign and tag with its stats."""
    return _model(CampaignList(campaigns=_store(request).campaigns()))


async def get_campaign(request: web.Request) -> web.Response:
    """One campaign (`45`) or tag (`tag:welcome`); 404 when nothing concerns it."""
    key = request.match_info["key"]
    stats = _store(request).campaign(key)
    if stats is None:
        return _error(404, "Not Found", f"no campaign {key}")
    return _model(stats)


async def get_suppressions(request: web.Request) -> web.Response:
    """Every address that must not be emailed or texted, and why."""
    return _model(SuppressionList(suppressions=_store(request).suppressions()))


async def get_alerts(request: web.Request) -> web.Response:
    """The newest marketing alerts."""
    return _model(AlertFeed(alerts=_store(request).alerts(_limit(request), _before(request))))


async def get_inbox(request: web.Request) -> web.Response:
    """The newest support messages."""
    return _model(InboxFeed(messages=_store(request).inbox(_limit(request), _before(request))))


async def get_openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of the API (public)."""
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


_LIMIT = Param(
    "limit",
    "query",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    "how many",
)
_STRING: dict[str, Any] = {"type": "string"}
_ADDRESS = Param("address", "path", _STRING, "an email (any case) or a phone number in E.164")
ROUTES: list[tuple[Route, Handler]] = [
    (
        Route(
            "/customers/{address}",
            "Get customer",
            CustomerView,
            (400, 401, 404),
            (_ADDRESS,),
        ),
        get_customer,
    ),
    (Route("/campaigns", "List campaigns", CampaignList), get_campaigns),
    (
        Route(
            "/campaigns/{key}",
            "Get campaign",
            CampaignStats,
            (401, 404),
            (Param("key", "path", _STRING, "a camp_id (`45`) or a tag (`tag:welcome`)"),),
        ),
        get_campaign,
    ),
    (Route("/suppressions", "List suppressions", SuppressionList), get_suppressions),
    (
        Route(
            "/alerts",
            "List alerts",
            AlertFeed,
            (400, 401),
            (
                _LIMIT,
                Param("before", "query", {"type": "string", "format": "date-time"}, "only older alerts"),
            ),
        ),
        get_alerts,
    ),
    (
        Route(
            "/inbox",
            "List inbox",
            InboxFeed,
            (400, 401),
            (
                _LIMIT,
                Param("before", "query", {"type": "string", "format": "date-time"}, "only older messages"),
            ),
        ),
        get_inbox,
    ),
    (
        Route(
            "/customers/{address}/timeline",
            "Get customer timeline",
            Timeline,
            (400, 401, 404),
            (_ADDRESS,),
        ),
        get_timeline,
    ),
    (Route("/overview", "Get overview", Overview), get_overview),
    (Route("/openapi.json", "Get openapi", None, (), public=True), get_openapi),
]


def _store(request: web.Request) -> ReadModel:
    projection: Projection = request[PINNED]
    return projection.model


class Staleness:
    """When the projection in service last changed, as seen at scrapes (so to a scrape interval).

    The read model only counts its changes (the projection modules read no clock); a scrape that finds
    the count, or the model, not as the last one left it, dates the change then.
    """

    def __init__(self, holder: ProjectionHolder, clock: Callable[[], float]) -> None:
        self._holder = holder
        self._clock = clock
        self._started_at = clock()
        self._seen: tuple[ReadModel, int] | None = None
        self.changed_at: float | None = None  # on `clock`

    def families(self) -> Iterator[Metric]:
        """The last change's time, the seconds since (since start when none), the version in service."""
        projection = self._holder.current
        now = self._clock()
        model, changes = projection.model, projection.model.changes
        if self._seen is None:
            if changes:
                self.changed_at = now
        elif model is not self._seen[0] or changes != self._seen[1]:
            self.changed_at = now
        self._seen = (model, changes)
        changed_at = self.changed_at
        yield GaugeMetricFamily(
            "tajo_projection_last_change_timestamp_seconds",
            "when a change to the projection in service was first seen, to a scrape (0: none yet)",
            value=0.0 if changed_at is None else time.time() - (now - changed_at),
        )
        yield GaugeMetricFamily(
            "tajo_projection_staleness_seconds",
            "seconds since the projection in service last changed (since start when it has not)",
            value=max(0.0, now - (self._started_at if changed_at is None else changed_at)),
        )
        yield GaugeMetricFamily(
            "tajo_projection_version", "the projection version in service", value=projection.version
        )


def create_app(  # noqa: PLR0913 - the observability options are keyword-only
    settings: ApiSettings,
    store: ReadModel | ProjectionHolder,
    feeder: Feeder,
    *,
    observe: ObservabilitySettings | None = None,
    telemetry: Telemetry | None = None,
    metrics_route: bool = True,
    insight: Insight | None = None,
) -> web.Application:
    """The projections API over a read model (or a holder of the one in service) the feeder keeps current.

    `/metrics` (unless not `metrics_route`: the app that mounts this one serves it) reads with the API's
    token, or without one when `observe` says so (TAJO_* variables by default); `telemetry` is the
    registry it serves, one of its own by default. `insight` feeds the overview and the timelines (by
    default an empty log tail, fed by nothing, and a status that knows nothing).
    """
    # No middleware: each handler is wrapped once here, with what it needs closed over (a middleware
    # costs two more coroutine layers on every request, a third of a customer read's own time).
    app = web.Application()
    app[API_SETTINGS] = settings
    holder = app[HOLDER] = store if isinstance(store, ProjectionHolder) else ProjectionHolder(store)
    app[FEEDER] = feeder
    observe = ObservabilitySettings.from_env(os.environ) if observe is None else observe
    insight = app[INSIGHT] = Insight() if insight is None else insight
    app[SILENCE_ALERT_S] = observe.silence_alert_s
    documented = [route for route, _ in ROUTES]
    if metrics_route:
        documented.append(
            Route(
                "/metrics",
                "Get metrics",
                None,
                () if observe.public_metrics else (401,),
                public=observe.public_metrics,
                text="Prometheus text format",
            )
        )
    app[OPENAPI] = orjson.dumps(openapi_document("tajo-events projections", documented))
    telemetry = app[TELEMETRY] = Telemetry() if telemetry is None else telemetry
    telemetry.collect(Staleness(holder, observe.clock).families)

    async def run_feeder(app: web.Application) -> AsyncIterator[None]:
        await app[FEEDER].start()
        yield
        await app[FEEDER].stop()

    async def run_tail(app: web.Application) -> AsyncIterator[None]:
        await app[INSIGHT].feeder.start()
        yield
        await app[INSIGHT].feeder.stop()

    app.cleanup_ctx.append(run_feeder)
    app.cleanup_ctx.append(run_tail)
    for route, handler in ROUTES:
        token = None if route.public else settings.api_token
        app.router.add_get(route.path, _serving(handler, holder, token, telemetry.counts_for(route.path)))
    if metrics_route:
        api_token = settings.api_token
        reader = None if observe.public_metrics else lambda request: bears(request, api_token)
        app.router.add_get("/metrics", telemetry.counted("/metrics", telemetry.metrics_handler(reader)))
    return app
