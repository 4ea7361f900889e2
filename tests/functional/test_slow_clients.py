"""Slow clients are cut off after TAJO_READ_TIMEOUT_S, while a prompt client is served meanwhile.

A real `tajo-events serve` on the embedded log, with a read timeout of 2 s. Twenty connections each
send a webhook's headers then dribble its 1,000-byte body a byte a second; twenty others dribble
their headers a byte a second. Every one of them must be closed within the timeout (plus a margin
for this shared machine), those whose body a handler was reading after a 408; meanwhile a signed
webhook on a connection of its own gets its 200.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest

from ingest.auth import sign
from samples.brevo import brevo_email
from tests.webhook_crash import SECRET, Server, webhook_env

READ_TIMEOUT_S = 2.0
MARGIN_S = 2.5  # a loaded 2-core machine: the timer fires late, the close takes its turn
SLOW_CLIENTS = 20
BODY_BYTES = 1000


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Server]:
    env = webhook_env() | {
        "TAJO_DATA_DIR": str(tmp_path / "data"),
        "TAJO_API_TOKEN": "slow-api-token",
        "TAJO_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
    }
    running = Server(["-m", "tajo_events.cli", "serve"], env, tmp_path / "serve.log", "listening on")
    try:
        yield await running.start()
    finally:
        running.stop()


@dataclass
class Cutoff:
    """How a slow connection ended: after how long, and what the server answered before closing."""

    seconds: float
    answer: bytes


def body_head(port: int, body: bytes) -> bytes:
    """A signed webhook's request line and headers, announcing `body`'s length."""
    return (
        f"POST /webhooks/brevo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Brevo-Signature: {sign(SECRET, body)}\r\n\r\n"
    ).encode()


async def dribble(port: int, first: bytes, rest: bytes) -> Cutoff:
    """Sends `first` at once, then `rest` a byte a second, until the server closes the connection."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = loop.time()
    answer = b""

    async def read_to_close() -> None:
        nonlocal answer
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(4096):
                answer += chunk

    closed = asyncio.create_task(read_to_close())
    try:
        writer.write(first)
        for byte in rest:
            writer.write(bytes([byte]))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # a byte a second, unless the server closes meanwhile
                    await asyncio.shield(closed)
            if closed.done():
                break
        await closed
        return Cutoff(loop.time() - started, answer)
    finally:
        closed.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def prompt_webhook(server: Server) -> int:
    """A signed webhook sent at once, on a connection of its own: its status."""
    body = orjson.dumps(brevo_email("delivered", email="prompt@example.com", ts_epoch=1_700_000_000_000))
    headers = {"Content-Type": "application/json", "X-Brevo-Signature": sign(SECRET, body)}
    async with aiohttp.ClientSession() as session, session.post(server.url, data=body, headers=headers) as r:
        return r.status


async def test_slow_bodies_and_slow_headers_are_cut_off_while_a_prompt_client_is_served(
    serve: Server,
) -> None:
    body = b"[" + b" " * (BODY_BYTES - 2) + b"]"
    headers = body_head(serve.port, body)
    async with asyncio.timeout(60):
        slow = [
            *(asyncio.create_task(dribble(serve.port, headers, body)) for _ in range(SLOW_CLIENTS)),
            *(asyncio.create_task(dribble(serve.port, b"", headers)) for _ in range(SLOW_CLIENTS)),
        ]
        await asyncio.sleep(0.5)  # the slow ones are connected and dribbling before the prompt one comes
        assert await prompt_webhook(serve) == 200
        cutoffs = await asyncio.gather(*slow)

    bodies, heads = cutoffs[:SLOW_CLIENTS], cutoffs[SLOW_CLIENTS:]
    late = [
        round(c.seconds, 2)
        for c in cutoffs
        if not READ_TIMEOUT_S - 0.1 <= c.seconds <= READ_TIMEOUT_S + MARGIN_S
    ]
    assert not late, f"connections closed after {late}s, not within {READ_TIMEOUT_S}s (+{MARGIN_S}s)"
    for cutoff in bodies:
        assert cutoff.answer.startswith(b"HTTP/1.1 408 "), cutoff.answer[:200]
        assert b"not received whole within 2s" in cutoff.answer
    assert all(cutoff.answer == b"" for cutoff in heads), [c.answer[:100] for c in heads]


async def test_a_connection_that_sends_nothing_is_closed_after_the_read_timeout(serve: Server) -> None:
    async with asyncio.timeout(30):
        cutoff = await dribble(serve.port, b"", b"")
    assert READ_TIMEOUT_S - 0.1 <= cutoff.seconds <= READ_TIMEOUT_S + MARGIN_S
    assert cutoff.answer == b""


async def test_a_keep_alive_connection_serves_requests_spaced_wider_than_the_read_timeout(
    serve: Server,
) -> None:
    body = orjson.dumps(brevo_email("delivered", email="kept@example.com", ts_epoch=1_700_000_000_001))
    headers = {"Content-Type": "application/json", "X-Brevo-Signature": sign(SECRET, body)}
    statuses = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for _ in range(2):
            async with session.post(serve.url, data=body, headers=headers) as response:
                statuses.append(response.status)
            await asyncio.sleep(READ_TIMEOUT_S + 1)  # idle between requests: the keep-alive timeout's
        async with session.post(serve.url, data=body, headers=headers) as response:
            statuses.append(response.status)
    assert statuses == [200, 200, 200]
