"""What the ingester lets in: allowed addresses, a rate limit for refused callers, load shedding, a deadline.

Brevo drops an event it gets a 4xx for, and retries one it gets a 5xx for. So an authenticated call is
never answered 429: when `TAJO_MAX_IN_FLIGHT` webhooks are already being handled it gets 503 with
`Retry-After`, and a body whose append has not finished by `TAJO_REQUEST_DEADLINE_S` gets a 503 before
Brevo's 5 s run out. Only the callers the ingester refuses (401, or 403 for an address outside
`TAJO_ALLOWED_IPS`) spend tokens of their address's bucket; with none left they get 429.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from aiohttp import web
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from ingest.allowlist import Address, client_address
from ingest.auth import header_authentic, presents_credentials, signs
from ingest.config import IngestSettings
from ingest.ratelimit import TokenBuckets, Verdict, client_key
from ingest.responses import json_error
from telemetry.metrics import Telemetry

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.Response]]
OVERLOAD_RETRY_AFTER_S = 5
FORWARDED_FOR = "X-Forwarded-For"


@dataclass
class Refusals:
    """Requests the guard answered itself, by why; plain ints read at scrapes."""

    forbidden: int = 0  # 403: the address is not allowed
    limited: int = 0  # 429: a refused caller out of tokens
    shed: int = 0  # 503: TAJO_MAX_IN_FLIGHT webhooks were being handled
    late: int = 0  # 503: the append had not finished by the deadline
    landed_late: int = 0  # of those, appends that finished in the log after the answer


class IngressGuard:
    """One app's allowlist, buckets, in-flight count and deadline."""

    def __init__(self, settings: IngestSettings, telemetry: Telemetry) -> None:
        self.settings = settings
        self.buckets = TokenBuckets(settings.rate_limit)
        self.in_flight = 0
        self.draining = False  # the app is closing: appends still running are waited for
        self.refusals = Refusals()
        self._appends: set[asyncio.Future[None]] = set()
        telemetry.collect(self._families)

    def client(self, request: web.BaseRequest) -> Address | None:
        """The client's address: the peer's, or the one trusted proxies forwarded."""
        forwarded = request.headers.getall(FORWARDED_FOR, [])
        return client_address(request.remote, forwarded, self.settings.trusted_proxies)

    def guard(self, handler: Handler, *, allowlisted: bool = False, admitted: bool = False) -> Handler:
        """`handler` behind the guard: the allowlist when `allowlisted`, the in-flight limit when `admitted`.

        Every guarded route rate-limits the callers it refuses.
        """
        settings = self.settings

        async def guarded(request: web.Request) -> web.Response:
            address = self.client(request)
            key = client_key(address)
            if allowlisted and settings.allowed_ips is not None and address not in settings.allowed_ips:
                response = self._refused(key, json_error(403, "the caller's address is not allowed"))
                if response.status == 403:  # a 429 is neither counted nor logged as one: floods stay quiet
                    self.refusals.forbidden += 1
                    log.warning("refused a webhook from %s: not in TAJO_ALLOWED_IPS", address or "no address")
                return response
            if not presents_credentials(settings, request.headers) and self.buckets.exhausted(key):
                return self._refused(key, json_error(401, "missing credentials"))  # no body read
            if not admitted:
                return self._limit(key, await handler(request))
            if self.in_flight >= settings.max_in_flight:
                if header_authentic(settings, request.headers) or signs(settings, request.headers):
                    self.refusals.shed += 1
                    return overloaded("the ingester is saturated, retry later")
                return self._refused(key, json_error(401, "missing or invalid credentials"))
            self.in_flight += 1
            try:
                response = await handler(request)
            finally:
                self.in_flight -= 1
            return self._limit(key, response)

        return guarded

    def _limit(self, key: str, response: web.Response) -> web.Response:
        return self._refused(key, response) if response.status in (401, 403) else response

    def _refused(self, key: str, response: web.Response) -> web.Response:
        """`response` (a refusal) with the bucket's headers, or a 429 when `key` has no token left."""
        verdict = self.buckets.take(key)
        if not verdict.allowed:
            self.refusals.limited += 1
            return too_many(verdict)
        response.headers.update(verdict.headers())
        return response

    async def append_by_deadline(self, append: Callable[[], Awaitable[None]], started: float) -> bool:
        """Runs `append` until the deadline (from `started`, on the loop's clock): True when it finished.

        At the deadline the append is left to finish, and False says to answer 503: the events may still
        land, and Brevo's retry is then a duplicate the fold recognizes by its event id. An append is not
        started once the deadline has passed. An error of the append (LogUnavailable) is raised when it
        comes in time.
        """
        remaining = self.settings.request_deadline_s - (asyncio.get_running_loop().time() - started)
        if remaining <= 0:
            self.refusals.late += 1
            log.error("a webhook reached its append past TAJO_REQUEST_DEADLINE_S; asked Brevo to retry")
            return False
        task = asyncio.ensure_future(append())
        self._appends.add(task)
        task.add_done_callback(self._settled)
        done, _ = await asyncio.wait({task}, timeout=remaining)
        if done:
            task.result()
            return True
        self.refusals.late += 1
        task.add_done_callback(self._landed_late)
        log.error("an append passed TAJO_REQUEST_DEADLINE_S; asked Brevo to retry, the append goes on")
        return False

    def _settled(self, task: asyncio.Future[None]) -> None:
        self._appends.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an append whose answer went out fails quietly here

    def _landed_late(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is None:
            self.refusals.landed_late += 1

    async def drain(self) -> None:
        """Waits for appends still running past their deadline (before the log closes)."""
        self.draining = True
        if self._appends:
            await asyncio.wait(set(self._appends))

    def _families(self) -> Iterator[Metric]:
        refused = CounterMetricFamily(
            "tajo_ingress_refused",
            "requests the ingester's guard answered itself, by reason: forbidden (403, address), "
            "limited (429, a refused caller's rate), shed (503, in-flight limit), late (503, deadline)",
            labels=["reason"],
        )
        for reason in ("forbidden", "limited", "shed", "late"):
            refused.add_metric([reason], getattr(self.refusals, reason))
        yield refused
        yield CounterMetricFamily(
            "tajo_ingress_landed_late",
            "appends answered 503 at the deadline that reached the log afterwards",
            value=self.refusals.landed_late,
        )
        yield GaugeMetricFamily("tajo_ingress_in_flight", "webhooks being handled", value=self.in_flight)


def too_many(verdict: Verdict) -> web.Response:
    """429 with `Retry-After` and the `RateLimit-*` headers."""
    return json_error(429, "too many refused requests from this address", verdict.headers())


def overloaded(message: str) -> web.Response:
    """503 with `Retry-After`: Brevo retries it later."""
    return json_error(503, message, {"Retry-After": str(OVERLOAD_RETRY_AFTER_S)})
