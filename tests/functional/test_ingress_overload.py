"""Overload without data loss, on the real app over TCP on 127.0.0.1 with the SQLite log held shut.

An authenticated flood past TAJO_MAX_IN_FLIGHT gets 503 + Retry-After and never a 429, even past the
rate limit; an unauthenticated flood meanwhile gets 401 then 429; once the log opens, Brevo's retries
land and every event answered 200 is in the log exactly once. An append past the deadline is answered
503 in time, lands later, and its retry is the duplicate the fold drops.
"""

import asyncio
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import orjson
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from domain.dedup import SeenEvents
from eventlog.port import LoggedRecord, LogHealth, LogRecord, ReadStart
from eventlog.sqlite import SqliteEventLog
from ingest.admission import IngressGuard
from ingest.app import GUARD, create_app
from ingest.config import IngestSettings
from schemas.event import decode_event, epoch_ms
from telemetry.metrics import Telemetry
from tests.processes import eventually

TOKEN = "overload-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
MAX_IN_FLIGHT = 4
FLOOD = 40  # authenticated bodies, past both the in-flight limit and the rate limit
RATE = 5  # refused requests per address per period


class GatedLog:
    """The SQLite log, whose appends wait until the gate opens: a log that cannot keep up."""

    def __init__(self, path: Path) -> None:
        self.log = SqliteEventLog(path)
        self.gate = asyncio.Event()
        self.waiting = 0
        self.waiting_at_stop: int | None = None

    async def start(self) -> None:
        await self.log.start()

    async def stop(self) -> None:
        self.waiting_at_stop = self.waiting
        await self.log.stop()

    async def health(self) -> LogHealth:
        return await self.log.health()

    async def append(self, records: Sequence[LogRecord]) -> None:
        self.waiting += 1
        await self.gate.wait()
        self.waiting -= 1
        await self.log.append(records)

    async def records(self) -> list[LoggedRecord]:
        return [record async for record in self.log.read(ReadStart())]


def body(n: int) -> bytes:
    event = {
        "event": "delivered",
        "email": f"user{n}@example.com",
        "message-id": f"flood-{n}",
        "ts": 1640995200,
    }
    return orjson.dumps(event)


async def post(
    session: ClientSession, url: str, data: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    async with session.post(url, data=data, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


def settings(**env: str) -> IngestSettings:
    base = {
        "BREVO_WEBHOOK_TOKEN": TOKEN,
        "TAJO_MAX_IN_FLIGHT": str(MAX_IN_FLIGHT),
        "TAJO_RATE_LIMIT": f"{RATE}/900",
    }
    return IngestSettings.from_env(base | env)


async def test_an_authenticated_flood_is_shed_with_503_never_429_and_no_accepted_event_is_lost(
    tmp_path: Path,
) -> None:
    log = GatedLog(tmp_path / "log.db")
    app: web.Application = create_app(settings(TAJO_REQUEST_DEADLINE_S="60"), log)
    async with TestServer(app, host="127.0.0.1") as server, ClientSession() as session:
        url = str(server.make_url("/webhooks/brevo"))
        flood = [asyncio.ensure_future(post(session, url, body(n), AUTH)) for n in range(FLOOD)]
        unsigned = {"Content-Type": "application/json"}
        strangers = [asyncio.ensure_future(post(session, url, body(n), unsigned)) for n in range(FLOOD)]
        await eventually(
            lambda: asyncio.sleep(0, log.waiting), lambda waiting: waiting == MAX_IN_FLIGHT, within=30
        )
        shed = await eventually(
            lambda: asyncio.sleep(0, [task for task in flood if task.done()]),
            lambda done: len(done) == FLOOD - MAX_IN_FLIGHT,
            within=30,
        )
        refused = await asyncio.gather(*strangers)  # answered while the log is still shut
        assert app[GUARD].in_flight == MAX_IN_FLIGHT
        log.gate.set()
        first = await asyncio.gather(*flood)

        assert Counter(status for status, _, _ in first) == {503: FLOOD - MAX_IN_FLIGHT, 200: MAX_IN_FLIGHT}
        assert all(headers["Retry-After"] == "5" for status, headers, _ in first if status == 503)
        assert len(shed) == FLOOD - MAX_IN_FLIGHT
        assert Counter(status for status, _, _ in refused) == {401: RATE, 429: FLOOD - RATE}
        for status, headers, _ in refused:
            assert headers["RateLimit-Limit"] == str(RATE)
            assert int(headers["RateLimit-Reset"]) > 0
            if status == 429:
                assert int(headers["Retry-After"]) > 0
                assert headers["RateLimit-Remaining"] == "0"

        # Brevo retries what it got a 503 for; the log keeps up now.
        answers = {n: first[n] for n in range(FLOOD)}
        shed_answers = FLOOD - MAX_IN_FLIGHT
        while retry := [n for n, (status, _, _) in answers.items() if status == 503]:
            again = await asyncio.gather(*(post(session, url, body(n), AUTH) for n in retry))
            answers |= dict(zip(retry, again, strict=True))
            assert all(status in (200, 503) for status, _, _ in again)  # shed again, maybe; never a 429
            shed_answers += sum(status == 503 for status, _, _ in again)
        accepted = [orjson.loads(answer)["event_ids"][0] for _, _, answer in answers.values()]
        in_log = Counter(decode_event(record.value).event_id for record in await log.records())
        assert all(in_log[event_id] == 1 for event_id in accepted)
        assert sorted(in_log) == sorted(accepted)
        assert len(accepted) == FLOOD
        refusals = app[GUARD].refusals
        assert (refusals.shed, refusals.limited, refusals.late) == (shed_answers, FLOOD - RATE, 0)


async def test_an_append_past_the_deadline_is_a_503_in_time_lands_later_and_its_retry_is_a_duplicate(
    tmp_path: Path,
) -> None:
    log = GatedLog(tmp_path / "log.db")
    app = create_app(settings(TAJO_REQUEST_DEADLINE_S="0.5"), log)
    async with TestServer(app, host="127.0.0.1") as server, ClientSession() as session:
        url = str(server.make_url("/webhooks/brevo"))
        loop = asyncio.get_running_loop()
        started = loop.time()
        status, headers, _ = await post(session, url, body(1), AUTH)
        took = loop.time() - started
        assert (status, headers["Retry-After"]) == (503, "5")
        assert 0.5 <= took < 4.5  # well within Brevo's 5 s
        log.gate.set()
        await eventually(log.records, lambda records: len(records) == 1, within=30)
        assert app[GUARD].refusals.landed_late == 1
        retried = await post(session, url, body(1), AUTH)  # Brevo's retry of the 503
        assert retried[0] == 200
        records = await log.records()
    events = [decode_event(record.value) for record in records]
    assert len(events) == 2
    assert events[0].event_id == events[1].event_id == orjson.loads(retried[2])["event_ids"][0]
    seen = SeenEvents()
    at = epoch_ms(events[0].occurred_at)
    assert [
        seen.admit(event.event_id, at, record.offset) for event, record in zip(events, records, strict=True)
    ] == [
        True,
        False,
    ]


async def test_shutdown_waits_for_an_append_answered_503_at_its_deadline(tmp_path: Path) -> None:
    log = GatedLog(tmp_path / "log.db")
    app = create_app(settings(TAJO_REQUEST_DEADLINE_S="0.2"), log)

    async def open_gate_once_draining() -> None:
        await eventually(lambda: asyncio.sleep(0, app[GUARD].draining), bool, within=30)
        log.gate.set()

    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with ClientSession() as session:
        status, _, _ = await post(session, str(server.make_url("/webhooks/brevo")), body(2), AUTH)
    assert status == 503
    opener = asyncio.ensure_future(open_gate_once_draining())
    await server.close()
    await opener
    assert log.waiting_at_stop == 0  # the log closed after the append, not under it
    reopened = SqliteEventLog(tmp_path / "log.db")
    await reopened.start()
    try:
        assert len([record async for record in reopened.read(ReadStart())]) == 1
    finally:
        await reopened.stop()


async def test_an_append_is_not_started_once_the_deadline_has_passed() -> None:
    guard = IngressGuard(settings(TAJO_REQUEST_DEADLINE_S="1"), Telemetry())
    started: list[bool] = []

    async def append() -> None:
        started.append(True)

    now = asyncio.get_running_loop().time()
    assert not await guard.append_by_deadline(append, now - 2)  # the body took 2 s to come and parse
    assert await guard.append_by_deadline(append, now)
    assert started == [True]
    assert guard.refusals.late == 1
