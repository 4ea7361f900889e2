"""The projections HTTP API: `GET /customers/{address}` returns the customer's loyalty view."""

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import orjson
from aiohttp import web

from projections.store import StateStore
from projections.views import loyalty_view
from schemas.brevo import normalize_email, normalize_phone


class Feeder(Protocol):
    """Keeps the store current while the API runs."""

    async def start(self) -> None:
        """Starts feeding."""

    async def stop(self) -> None:
        """Stops feeding."""


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The bearer token services present to read projections."""

    api_token: str = field(repr=False)


STORE = web.AppKey("store", StateStore)
FEEDER = web.AppKey("feeder", Feeder)
API_SETTINGS = web.AppKey("api_settings", ApiSettings)


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _authorized(request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), request.app[API_SETTINGS].api_token.encode())


def normalize_address(text: str) -> str | None:
    """An address from a URL: an email (any case) or a phone number, in canonical form."""
    return normalize_email(text) if "@" in text else normalize_phone(text)


async def get_customer(request: web.Request) -> web.Response:
    """The loyalty view of one customer; 404 when no event concerned this address."""
    if not _authorized(request):
        return _json({"error": "Unauthorized", "message": "missing or invalid bearer token"}, 401)
    address = normalize_address(request.match_info["address"])
    if address is None:
        return _json({"error": "Bad Request", "message": "not an email address or phone number"}, 400)
    state = request.app[STORE].get(address)
    if state is None:
        return _json({"error": "Not Found", "message": f"no customer {address}"}, 404)
    return _json(loyalty_view(state))


def create_app(settings: ApiSettings, store: StateStore, feeder: Feeder) -> web.Application:
    """The projections API over a store that the feeder keeps current."""
    app = web.Application()
    app[API_SETTINGS] = settings
    app[STORE] = store
    app[FEEDER] = feeder

    async def run_feeder(app: web.Application) -> AsyncIterator[None]:
        await app[FEEDER].start()
        yield
        await app[FEEDER].stop()

    app.cleanup_ctx.append(run_feeder)
    app.router.add_get("/customers/{address}", get_customer)
    return app
