"""`tajo-events replay` on the embedded log, next to a running server: verify, repair, switch atomically."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from domain.state import decode_state, encode_state
from ingest.auth import sign
from projections.api import VERSION_HEADER
from streams.embedded import StateDb
from tajo_events.embedded import STATE_FILE, create_embedded_app
from tests.payloads import Raw, brevo_email
from tests.processes import eventually, run_command

SECRET = b"replay-secret"
TOKEN = "replay-token"
CUSTOMERS = [f"c{n}@example.com" for n in range(12)]
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def email(event: str, address: str, at: int, message_id: str) -> Raw:
    """A real-Brevo email event at `at` (epoch ms)."""
    return brevo_email(event, email=address, ts_epoch=at, **{"message-id": message_id})


class Embedded:
    """An embedded server on 127.0.0.1 in this event loop, and a client for it."""

    def __init__(self, server: TestServer, session: ClientSession, data_dir: Path) -> None:
        self.server = server
        self.session = session
        self.data_dir = data_dir

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def post(self, body: object) -> None:
        data = orjson.dumps(body)
        headers = {"Content-Type": "application/json", "X-Brevo-Signature": sign(SECRET, data)}
        async with self.session.post(self.url("/webhooks/brevo"), data=data, headers=headers) as response:
            assert response.status == 200, await response.text()

    async def get(self, path: str) -> tuple[int, bytes, str]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with self.session.get(self.url(f"/api{path}"), headers=headers) as response:
            return response.status, await response.read(), response.headers.get(VERSION_HEADER, "")

    async def delivered(self, address: str) -> int:
        status, body, _ = await self.get(f"/customers/{address}")
        if status != 200:
            return 0
        counts: int = orjson.loads(body)["channels"]["email"]["counts"]["delivered"]
        return counts

    async def wait_delivered(self, address: str, count: int) -> None:
        await eventually(lambda: self.delivered(address), lambda n: n == count, within=60)

    async def replay(self, *args: str) -> tuple[int, str, str]:
        return await run_command(["replay", *args], {"TAJO_DATA_DIR": str(self.data_dir)}, within=120)


@pytest.fixture
async def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Embedded]:
    for name in ("BREVO_WEBHOOK_TOKEN", "BREVO_API_KEY", "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BREVO_WEBHOOK_SECRET", SECRET.decode())
    data_dir = tmp_path / "data"
    server = TestServer(create_embedded_app(data_dir, TOKEN), host="127.0.0.1")
    await server.start_server()
    async with ClientSession() as session:
        yield Embedded(server, session, data_dir)
    await server.close()


async def fill(embedded: Embedded, per_customer: int) -> None:
    """Posts `per_customer` deliveries and a few opens and clicks per customer, in batched bodies."""
    for n in range(per_customer):
        batch: list[Any] = []
        for c, address in enumerate(CUSTOMERS):
            at = T0 + n * 60_000 + c
            batch.append(email("delivered", address, at, f"m{n}-{c}"))
            if n % 3 == 0:
                batch.append(email("opened", address, at + 1, f"m{n}-{c}"))
            if n % 7 == 0:
                batch.append(email("click", address, at + 2, f"m{n}-{c}"))
        await embedded.post(batch)
    for address in CUSTOMERS:
        await embedded.wait_delivered(address, per_customer)


async def test_verify_reports_equality_names_a_corrupted_customer_and_replay_repairs_it(
    embedded: Embedded,
) -> None:
    await fill(embedded, per_customer=20)
    code, out, err = await embedded.replay("--verify")
    assert code == 0, out + err
    assert "equals a rebuild" in out

    corrupted = CUSTOMERS[3]
    db = StateDb(embedded.data_dir / STATE_FILE)
    try:
        stored = db.get(corrupted, db.live_version())
        assert stored is not None
        state = decode_state(stored)
        wrong = replace(state.email_channel, delivered=state.email_channel.delivered + 1)
        db.set_state(corrupted, encode_state(replace(state, email_channel=wrong)))
    finally:
        db.close()

    code, out, _ = await embedded.replay("--verify")
    assert code == 1
    listed = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert listed == [corrupted]

    code, out, err = await embedded.replay()
    assert code == 0, out + err
    assert "replay: " in err  # plain progress lines, stderr is not a terminal
    code, out, _ = await embedded.replay("--verify")
    assert code == 0, out


async def test_reads_during_a_replay_see_the_old_projection_or_the_whole_new_one(embedded: Embedded) -> None:
    await fill(embedded, per_customer=40)
    paths = [f"/customers/{a}" for a in CUSTOMERS] + ["/campaigns", "/suppressions"]
    expected = {}
    for path in paths:
        status, body, version = await embedded.get(path)
        assert status == 200
        expected[path] = body
    assert version == "0"

    seen: dict[str, int] = {}
    wrong: list[tuple[str, int, str]] = []
    switched = asyncio.Event()
    rounds_after = asyncio.Event()

    async def read_on() -> None:
        while True:
            for path in paths:
                status, body, version = await embedded.get(path)
                seen[version] = seen.get(version, 0) + 1
                if status != 200 or body != expected[path]:
                    wrong.append((path, status, version))
                if version != "0":
                    switched.set()
                if seen.get("1", 0) >= 2 * len(paths):  # two whole rounds on the new version
                    rounds_after.set()

    reader = asyncio.create_task(read_on())
    try:
        code, out, err = await embedded.replay()
        assert code == 0, out + err
        async with asyncio.timeout(30):
            await switched.wait()
            await rounds_after.wait()
    finally:
        reader.cancel()
    assert wrong == []
    assert set(seen) == {"0", "1"}
    assert seen["0"] > len(paths)  # reads went on while the replay ran


async def test_events_posted_during_a_replay_all_reach_the_new_version(embedded: Embedded) -> None:
    await fill(embedded, per_customer=30)
    address = CUSTOMERS[0]

    async def post_more() -> None:
        for n in range(40):
            at = T0 + 10_000_000 + n
            await embedded.post(email("delivered", address, at, f"x{n}"))

    poster = asyncio.create_task(post_more())
    code, out, err = await embedded.replay()
    await poster
    assert code == 0, out + err
    await embedded.wait_delivered(address, 30 + 40)
    code, out, _ = await embedded.replay("--verify")
    assert code == 0, out


async def test_replay_from_an_offset_rebuilds_from_that_point_on(embedded: Embedded) -> None:
    address = CUSTOMERS[0]
    for n in range(10):
        await embedded.post(email("delivered", address, T0 + n, f"o{n}"))
    await embedded.wait_delivered(address, 10)
    code, out, err = await embedded.replay("--from-offset", "4")
    assert code == 0, out + err
    await embedded.wait_delivered(address, 6)


async def test_replay_refuses_verify_with_a_start_point_and_a_missing_log(
    embedded: Embedded, tmp_path: Path
) -> None:
    code, _, err = await embedded.replay("--verify", "--from-offset", "3")
    assert code == 2
    assert "from the start of the log" in err
    embedded.data_dir = tmp_path / "nowhere"
    code, _, err = await embedded.replay()
    assert code == 2
    assert "no embedded log" in err
