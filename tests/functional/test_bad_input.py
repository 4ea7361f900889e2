"""Bad input is a 4xx, never a 500: events nested too deep, and odd bytes in the auth headers.

The ingester runs on the SQLite log in `tmp_path`. Header values with non-ASCII bytes go over a raw
socket: aiohttp decodes a byte that is not UTF-8 to a lone surrogate, which the client would not send.
"""

import asyncio
from collections.abc import Awaitable, Callable

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from eventlog.sqlite import SqliteEventLog
from ingest.app import COUNTERS, create_app
from ingest.auth import SIGNATURE_HEADER, sign
from ingest.config import IngestSettings
from projections.api import ApiSettings
from projections.api import create_app as create_projections_app
from projections.store import ReadModel
from schemas.brevo import MAX_EVENT_DEPTH
from tajo_events.embedded import create_embedded_app

SECRET = b"bad-input-secret"
TOKEN = "bad-input-token"
API_TOKEN = "bad-input-api-token"
Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]

ODD_VALUES = [
    b"\xff\xfe",  # not UTF-8 at all
    b"\x80" + TOKEN.encode(),  # a stray continuation byte before the right token
    TOKEN.encode()[:-1] + b"\xe9",  # latin-1 in place of the last character
    "caf\u00e9".encode(),  # valid UTF-8, just not ASCII
]


def deep_event(depth: int, container: str = "[]") -> bytes:
    """A delivered event whose objects and arrays nest `depth` levels, the event itself being level 1."""
    opening, closing = (b'{"a":', b"}") if container == "{}" else (b"[", b"]")
    nested = opening * (depth - 2) + b"[]" + closing * (depth - 2) if depth > 1 else b"0"
    return b'{"event":"delivered","email":"jane@example.com","ts":1640995200,"x":' + nested + b"}"


def signed(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", SIGNATURE_HEADER: sign(SECRET, body)}


def ingest_app(tmp_path_factory: pytest.TempPathFactory) -> web.Application:
    settings = IngestSettings(webhook_secret=SECRET, webhook_token=TOKEN)
    return create_app(settings, SqliteEventLog(tmp_path_factory.mktemp("log") / "log.db"))


@pytest.fixture
async def client(aiohttp_client: ClientFactory, tmp_path_factory: pytest.TempPathFactory) -> Client:
    return await aiohttp_client(ingest_app(tmp_path_factory))


# --------------------------------------------------------------------------- deep nesting


def test_deep_event_helper_nests_as_it_says() -> None:
    def depth(value: object) -> int:
        if isinstance(value, dict):
            return 1 + max((depth(v) for v in value.values()), default=0)
        if isinstance(value, list):
            return 1 + max((depth(v) for v in value), default=0)
        return 0

    assert [depth(orjson.loads(deep_event(n, shape))) for n in (2, 3, 64) for shape in ("[]", "{}")] == [
        2,
        2,
        3,
        3,
        64,
        64,
    ]


@pytest.mark.parametrize("shape", ["[]", "{}"])
@pytest.mark.parametrize("path", ["/webhooks/brevo", "/webhooks/brevo/test"])
async def test_an_event_at_the_depth_limit_is_accepted(client: Client, shape: str, path: str) -> None:
    body = deep_event(MAX_EVENT_DEPTH, shape)
    response = await client.post(path, data=body, headers=signed(body))
    assert response.status == 200, await response.text()


@pytest.mark.parametrize("depth", [MAX_EVENT_DEPTH + 1, 100, 254, 255, 500, 1000, 1023, 1024, 1025, 5000])
@pytest.mark.parametrize("path", ["/webhooks/brevo", "/webhooks/brevo/test"])
async def test_an_event_nested_too_deep_is_a_400(client: Client, depth: int, path: str) -> None:
    body = deep_event(depth)
    response = await client.post(path, data=body, headers=signed(body))
    assert response.status == 400, await response.text()
    message = (await response.json())["message"]
    # Up to orjson's parse limit the event is read and refused for its depth; past it the JSON is.
    assert "nested deeper than 64 levels" in message or "malformed JSON" in message, message
    if depth <= 1000:
        assert "nested deeper than 64 levels" in message
    assert client.app is not None
    assert client.app[COUNTERS].accepted == 0


async def test_objects_nested_too_deep_are_a_400_too(client: Client) -> None:
    body = deep_event(500, "{}")
    response = await client.post("/webhooks/brevo", data=body, headers=signed(body))
    assert response.status == 400
    assert "nested deeper than 64 levels" in (await response.json())["message"]


async def test_a_deep_event_in_a_batch_is_named_and_nothing_is_appended(client: Client) -> None:
    fine = b'{"event":"delivered","email":"ann@example.com","ts":1640995200}'
    for body in (b"[" + fine + b"," + deep_event(500) + b"]", b'{"items":[' + deep_event(500) + b"]}"):
        response = await client.post("/webhooks/brevo", data=body, headers=signed(body))
        assert response.status == 400, await response.text()
        assert "nested deeper than 64 levels" in (await response.json())["message"]
    assert client.app is not None
    assert client.app[COUNTERS].accepted == 0


async def test_a_deep_id_is_refused_although_the_id_is_no_part_of_the_event_id(client: Client) -> None:
    body = b'{"event":"delivered","email":"jane@example.com","id":' + b"[" * 300 + b"]" * 300 + b"}"
    response = await client.post("/webhooks/brevo", data=body, headers=signed(body))
    assert response.status == 400
    assert "nested deeper than 64 levels" in (await response.json())["message"]


# --------------------------------------------------------------------------- odd header bytes


async def raw_status(server: TestServer, method: str, path: str, header: bytes, value: bytes) -> int:
    """The status of a request sent as bytes, with one header set to `value` as it is."""
    body = b'{"event":"delivered","email":"jane@example.com","ts":1640995200}' if method == "POST" else b""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head + header + b": " + value + b"\r\n\r\n" + body)
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    status_line = response.split(b"\r\n", 1)[0]
    return int(status_line.split(b" ")[1])


def header_values(header: bytes) -> list[bytes]:
    prefix = b"Bearer " if header == b"Authorization" else b"sha256="
    return [prefix + value for value in ODD_VALUES] + ODD_VALUES


INGEST_ROUTES = [
    ("POST", "/webhooks/brevo"),
    ("POST", "/webhooks/brevo/test"),
    ("GET", "/webhooks/brevo/health"),
]


@pytest.mark.parametrize("header", [b"Authorization", SIGNATURE_HEADER.encode()])
@pytest.mark.parametrize(("method", "path"), INGEST_ROUTES)
async def test_odd_bytes_in_a_webhook_auth_header_are_a_401(
    aiohttp_server: ServerFactory,
    tmp_path_factory: pytest.TempPathFactory,
    header: bytes,
    method: str,
    path: str,
) -> None:
    server = await aiohttp_server(ingest_app(tmp_path_factory))
    for value in header_values(header):
        assert await raw_status(server, method, path, header, value) == 401, value


async def test_odd_bytes_in_the_projections_token_are_a_401(aiohttp_server: ServerFactory) -> None:
    class NoFeeder:
        async def start(self) -> None:
            pass

        async def stop(self) -> None:
            pass

    server = await aiohttp_server(create_projections_app(ApiSettings(API_TOKEN), ReadModel(), NoFeeder()))
    for path in ("/customers/jane@example.com", "/campaigns", "/suppressions", "/alerts"):
        for value in header_values(b"Authorization"):
            assert await raw_status(server, "GET", path, b"Authorization", value) == 401, (path, value)
    right = b"Bearer " + API_TOKEN.encode()
    assert await raw_status(server, "GET", "/customers/jane@example.com", b"Authorization", right) == 404


async def test_a_non_ascii_token_is_compared_as_the_bytes_it_came_as(
    aiohttp_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    token = "caf\u00e9-token"
    app = create_app(
        IngestSettings(webhook_token=token), SqliteEventLog(tmp_path_factory.mktemp("log") / "log.db")
    )
    server = await aiohttp_server(app)
    path, header = "/webhooks/brevo/health", b"Authorization"
    assert await raw_status(server, "GET", path, header, b"Bearer " + token.encode()) == 200
    assert await raw_status(server, "GET", path, header, b"Bearer " + token.encode("latin-1")) == 401


@pytest.fixture
def embedded_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BREVO_WEBHOOK_TOKEN", "BREVO_API_KEY", "TAJO_PUBLIC_HEALTH", "TAJO_MAX_BODY_BYTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BREVO_WEBHOOK_SECRET", SECRET.decode())


@pytest.mark.usefixtures("embedded_env")
async def test_embedded_serve_answers_odd_bytes_and_deep_events_with_4xx(
    aiohttp_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = await aiohttp_server(create_embedded_app(tmp_path_factory.mktemp("data"), API_TOKEN))
    routes = [*INGEST_ROUTES, ("GET", "/api/customers/jane@example.com"), ("GET", "/api/campaigns")]
    for method, path in routes:
        for header in (b"Authorization", SIGNATURE_HEADER.encode()):
            for value in header_values(header):
                assert await raw_status(server, method, path, header, value) == 401, (path, header, value)
    body = deep_event(500)
    head = b"POST /webhooks/brevo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
    head += f"{SIGNATURE_HEADER}: {sign(SECRET, body)}\r\n\r\n".encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head + body)
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert response.startswith(b"HTTP/1.1 400 "), response[:200]
