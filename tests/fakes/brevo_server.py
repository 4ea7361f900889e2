"""A fake Brevo REST API served over real HTTP on 127.0.0.1: records calls, fails or stalls on demand."""

import asyncio
import contextlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import orjson
from aiohttp import web

API_ROOT = "/v3"
DEFAULT_API_KEY = "fake-brevo-api-key"
MAX_WEBHOOKS = 40
# The subscription names Brevo's POST /webhooks takes, per (type, channel).
WEBHOOK_EVENTS: dict[tuple[str, str], frozenset[str]] = {
    ("transactional", "email"): frozenset(
        {"sent", "request", "delivered", "hardBounce", "softBounce", "blocked", "spam", "invalid", "deferred"}
        | {"click", "opened", "uniqueOpened", "unsubscribed"}
    ),
    ("marketing", "email"): frozenset(
        {"spam", "opened", "click", "hardBounce", "softBounce", "unsubscribed", "listAddition", "delivered"}
        | {"contactUpdated", "contactDeleted"}
    ),
    ("transactional", "sms"): frozenset(
        {"accepted", "delivered", "softBounce", "hardBounce", "unsubscribe", "reply", "subscribe", "sent"}
        | {"blacklisted", "skip"}
    ),
    ("marketing", "sms"): frozenset(
        {"sent", "delivered", "softBounce", "hardBounce", "unsubscribe", "reply", "subscribe", "skip"}
    ),
    ("inbound", "email"): frozenset({"inboundEmailProcessed"}),
}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it; `path` is relative to the API root and decoded."""

    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    json: object
    headers: dict[str, str]  # names lower-cased


@dataclass(slots=True)
class _Rule:
    path_prefix: str
    remaining: int
    status: int = 500
    delay_s: float = 0.0


@dataclass(slots=True)
class _State:
    requests: list[RecordedRequest] = field(default_factory=list)
    sms_sent: list[dict[str, object]] = field(default_factory=list)
    blacklisted: list[str] = field(default_factory=list)
    failures: list[_Rule] = field(default_factory=list)
    stalls: list[_Rule] = field(default_factory=list)
    webhooks: list[dict[str, object]] = field(default_factory=list)
    next_webhook_id: int = 1


def _error(status: int, code: str, message: str) -> web.Response:
    return web.Response(
        body=orjson.dumps({"code": code, "message": message}), status=status, content_type="application/json"
    )


def _take(rules: list[_Rule], path: str) -> _Rule | None:
    for rule in rules:
        if rule.remaining > 0 and path.startswith(rule.path_prefix):
            rule.remaining -= 1
            return rule
    return None


class FakeBrevo:
    """`async with FakeBrevo(api_key=...) as fake:` serves the API at `fake.base_url` until the block ends."""

    def __init__(self, api_key: str = DEFAULT_API_KEY, sms_message_id: int = 1_000) -> None:
        self.api_key = api_key
        self._state = _State()
        self._next_message_id = sms_message_id
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """The API root to configure clients with, like `https://api.brevo.com/v3`."""
        if self._base_url is None:
            raise RuntimeError("FakeBrevo is not started")
        return self._base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in order, including refused and failed ones."""
        return self._state.requests

    @property
    def sms_sent(self) -> list[dict[str, object]]:
        """The JSON bodies of the SMS sends that succeeded."""
        return self._state.sms_sent

    @property
    def blacklisted(self) -> list[str]:
        """The contact identifiers (decoded, e.g. `+33612345678`) blacklisted for SMS, once per call."""
        return self._state.blacklisted

    @property
    def webhooks(self) -> list[dict[str, object]]:
        """The account's webhooks as GET /webhooks lists them (with `id`, `type`, `channel`), oldest first."""
        return self._state.webhooks

    def add_webhook(self, **fields: object) -> str:
        """Puts a webhook in the account as is, unchecked (to set up drift); returns its id as a string."""
        webhook: dict[str, object] = {"id": self._state.next_webhook_id, "type": "transactional", **fields}
        self._state.next_webhook_id += 1
        self._state.webhooks.append(webhook)
        return str(webhook["id"])

    def requests_to(self, path_prefix: str) -> list[RecordedRequest]:
        """The requests whose path (relative to the API root) starts with `path_prefix`."""
        return [request for request in self.requests if request.path.startswith(path_prefix)]

    def fail_next(self, path_prefix: str, times: int, status: int = 500) -> None:
        """Answers the next `times` authenticated calls under `path_prefix` with `status`."""
        self._state.failures.append(_Rule(path_prefix, times, status=status))

    def slow_next(self, path_prefix: str, times: int, delay_s: float) -> None:
        """Waits `delay_s` before answering the next `times` authenticated calls under `path_prefix`."""
        self._state.stalls.append(_Rule(path_prefix, times, delay_s=delay_s))

    async def start(self) -> None:
        """Serves on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_route("*", API_ROOT + "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._base_url = f"http://{host}:{port}{API_ROOT}"

    async def stop(self) -> None:
        """Releases stalled calls and stops serving."""
        self._closing.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload: object = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            payload = None
        path = request.path.removeprefix(API_ROOT)
        self._state.requests.append(
            RecordedRequest(
                method=request.method,
                path=path,
                raw_path=request.raw_path,
                query=dict(request.query),
                json=payload,
                headers={name.lower(): value for name, value in request.headers.items()},
            )
        )
        refusal = await self._refusal(request, path)
        if refusal is not None:
            return refusal
        if body and payload is None:
            return _error(400, "bad_request", "malformed JSON")
        if path == "/webhooks":
            return self._webhooks(request, payload)
        if request.method == "POST" and path == "/transactionalSMS/send":
            return self._send_sms(payload)
        if request.method == "PUT" and path.startswith("/contacts/"):
            identifier = path.removeprefix("/contacts/")
            return self._update_contact(identifier, request.query.get("identifierType"), payload)
        return _error(404, "not_found", f"no route for {request.method} {path}")

    async def _refusal(self, request: web.Request, path: str) -> web.Response | None:
        """401 for a wrong key, else the injected stall and failure, if any is due."""
        if request.headers.get("api-key") != self.api_key:
            return _error(401, "unauthorized", "Key not found")
        stall = _take(self._state.stalls, path)
        if stall is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), stall.delay_s)
            if self._closing.is_set():
                return _error(503, "unavailable", "shutting down")
        failure = _take(self._state.failures, path)
        if failure is not None:
            return _error(failure.status, "failure", f"injected failure {failure.status}")
        return None

    def _send_sms(self, payload: object) -> web.Response:
        if not isinstance(payload, dict):
            return _error(400, "bad_request", "body must be a JSON object")
        missing = [key for key in ("sender", "recipient", "content") if not payload.get(key)]
        if missing:
            return _error(400, "missing_parameter", f"missing {', '.join(missing)}")
        recipient = payload["recipient"]
        if not isinstance(recipient, str) or not recipient.isdigit():
            return _error(400, "invalid_parameter", "recipient must be digits with the country code")
        sender = payload["sender"]
        if not isinstance(sender, str) or len(sender) > (15 if sender.isdigit() else 11):
            return _error(400, "invalid_parameter", "sender must be at most 11 alphanumeric characters")
        self._state.sms_sent.append(payload)
        self._next_message_id += 1
        return web.Response(
            body=orjson.dumps({"messageId": self._next_message_id}),
            status=201,
            content_type="application/json",
        )

    def _update_contact(self, identifier: str, identifier_type: str | None, payload: object) -> web.Response:
        if not identifier:
            return _error(400, "invalid_parameter", "missing contact identifier")
        if not isinstance(payload, dict) or not payload:
            return _error(400, "bad_request", "body must be a non-empty JSON object")
        if payload.get("smsBlacklisted") is True:
            if identifier_type != "phone_id" or not identifier.removeprefix("+").isdigit():
                return _error(400, "invalid_parameter", "expected a phone with identifierType=phone_id")
            self._state.blacklisted.append(identifier)
        return web.Response(status=204)

    def _list_webhooks(self, webhook_type: str) -> web.Response:
        if webhook_type not in {"transactional", "marketing", "inbound"}:
            return _error(400, "invalid_parameter", "type must be transactional, marketing or inbound")
        listed = [webhook for webhook in self._state.webhooks if webhook.get("type") == webhook_type]
        return web.Response(
            body=orjson.dumps({"webhooks": listed}), status=200, content_type="application/json"
        )

    def _webhooks(self, request: web.Request, payload: object) -> web.Response:
        if request.method == "GET":
            return self._list_webhooks(request.query.get("type", "transactional"))
        if request.method == "POST":
            return self._create_webhook(payload)
        return _error(405, "method_not_allowed", f"{request.method} /webhooks")

    def _create_webhook(self, payload: object) -> web.Response:
        if not isinstance(payload, dict):
            return _error(400, "bad_request", "body must be a JSON object")
        webhook_type, channel = payload.get("type", "transactional"), payload.get("channel", "email")
        problem = _webhook_problem(payload, str(webhook_type), str(channel))
        if problem is not None:
            return _error(400, "invalid_parameter", problem)
        if len(self._state.webhooks) >= MAX_WEBHOOKS:
            return _error(400, "permission_denied", f"at most {MAX_WEBHOOKS} webhooks per account")
        webhook_id = self.add_webhook(**{**payload, "type": webhook_type, "channel": channel})
        return web.Response(
            body=orjson.dumps({"id": int(webhook_id)}), status=201, content_type="application/json"
        )


def _webhook_problem(payload: dict[str, object], webhook_type: str, channel: str) -> str | None:
    """What Brevo would refuse in a POST /webhooks body, or None."""
    url, events, auth = payload.get("url"), payload.get("events"), payload.get("auth")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return "url must be an http(s) URL"
    if not isinstance(events, list) or not events:
        return "events must be a non-empty list"
    allowed = WEBHOOK_EVENTS.get((webhook_type, channel))
    if allowed is None:
        return f"no webhooks of type {webhook_type} on channel {channel}"
    unknown = [event for event in events if event not in allowed]
    if unknown:
        return f"events not valid for {webhook_type}/{channel}: {unknown}"
    bearer = isinstance(auth, dict) and auth.get("type") == "bearer" and bool(auth.get("token"))
    if auth is not None and not bearer:
        return "auth must be {type: bearer, token: ...}"
    return None
