"""The API the page reads beyond the views (overview, timelines, the inbox paged), and the page's files."""

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from domain.state import CustomerState, InboxMessage, encode_state
from eventlog.port import LoggedRecord
from projections.api import ApiSettings, Insight, create_app
from projections.log_tail import LogTail
from projections.overview import NoStatus
from projections.store import ReadModel
from schemas.brevo import canonicalize_all
from schemas.event import encode_event
from tajo_events.settings import PipelineSettings
from tests.fold_helpers import RECEIVED
from tests.payloads import Raw, brevo_sms, seed_email
from webpage.routes import add_page

TOKEN = "page-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EMAIL = "jane@example.com"
PHONE = "+33612345678"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


class Idle:
    """A feeder with nothing to do: the test feeds the model and the tail itself."""

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""


def _tail() -> LogTail:
    raws: list[Raw] = [
        seed_email("delivered", EMAIL, camp_id=45),
        seed_email("clicked", EMAIL, camp_id=45, ts=1640995300, link="https://x.example/rewards"),
        brevo_sms("delivered", to=PHONE.removeprefix("+"), ts=1640995250),
        seed_email("delivered", "gone@example.com"),
        {"event": "mystery", "email": EMAIL, "ts": 1640995400},
    ]
    events = [event for raw in raws for event in canonicalize_all(raw, RECEIVED)]
    tail = LogTail()
    tail.apply(
        [LoggedRecord(0, n, e.key.encode(), encode_event(e), T0 + n * 1000) for n, e in enumerate(events)]
    )
    return tail


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> Client:
    model = ReadModel()
    inbox = tuple(InboxMessage(f"m{n}", PHONE, T0 + n * 1000, f"message {n}") for n in range(5))
    states = [
        CustomerState(address=EMAIL, kind="email", email=EMAIL, phone=PHONE, contact_known=True),
        CustomerState(address=PHONE, kind="phone", phone=PHONE, email=EMAIL, inbox=inbox),
        CustomerState(address="gone@example.com", kind="email", last_deleted_at=T0),
    ]
    for state in states:
        model.apply(state.address, encode_state(state))
    insight = Insight(_tail(), Idle(), NoStatus(), clock_ms=lambda: T0 + 30_000)
    app = create_app(ApiSettings(TOKEN), model, Idle(), insight=insight)
    add_page(app, "")
    return await aiohttp_client(app)


async def get(client: Client, path: str, status: int = 200) -> Any:
    response = await client.get(path, headers=AUTH)
    assert response.status == status, await response.text()
    return orjson.loads(await response.read())


async def test_a_timeline_merges_the_email_and_its_linked_phone_newest_first(client: Client) -> None:
    body = await get(client, "/customers/Jane@Example.com/timeline")
    assert body["address"] == EMAIL
    assert [e["type"] for e in body["events"]] == [
        "unknown",
        "email.clicked",
        "sms.delivered",
        "email.delivered",
    ]
    assert body["events"][1]["link"] == "https://x.example/rewards"
    assert body["events"][1]["campaign"] == "45"
    assert (await get(client, "/customers/+33612345678/timeline"))["events"] == body["events"]


async def test_a_timeline_is_404_for_unknown_or_deleted_customers_and_400_for_no_address(
    client: Client,
) -> None:
    assert (await get(client, "/customers/nobody@example.com/timeline", 404))["error"] == "Not Found"
    await get(client, "/customers/gone@example.com/timeline", 404)
    await get(client, "/customers/not-an-address/timeline", 400)


async def test_the_overview_counts_the_log_and_dates_the_last_event(client: Client) -> None:
    body = await get(client, "/overview")
    assert body["last_hour_totals"] == {
        "email.clicked": 1,
        "email.delivered": 2,
        "sms.delivered": 1,
        "unknown": 1,
    }
    assert body["unknown_names"] == [{"name": "mystery", "count": 1}]
    assert body["brevo"]["last_event_at"] == "2026-01-01T00:00:04Z"
    assert body["brevo"]["silent"] is False
    assert body["now"] == "2026-01-01T00:00:30Z"
    assert body["services"] == [{"name": "projections", "status": "ok", "detail": "answering"}]


async def test_the_inbox_pages_by_before(client: Client) -> None:
    first = (await get(client, "/inbox?limit=2"))["messages"]
    assert [m["text"] for m in first] == ["message 4", "message 3"]
    older = (await get(client, f"/inbox?limit=2&before={first[-1]['at']}"))["messages"]
    assert [m["text"] for m in older] == ["message 2", "message 1"]
    await get(client, "/inbox?before=yesterday", 400)


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/", "text/html"), ("/static/app.js", "text/javascript"), ("/static/style.css", "text/css")],
)
async def test_the_page_is_public_static_and_locked_to_its_origin(
    client: Client, path: str, kind: str
) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == kind
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    body = await response.text()
    assert EMAIL not in body
    if path == "/":
        assert '<meta name="tajo-api-base" content="">' in body  # the API at this app's root


def test_the_projections_command_serves_the_page_at_its_root(tmp_path: Path) -> None:
    from tajo_events.cli import projections_app

    settings = PipelineSettings(
        bootstrap_servers="127.0.0.1:9",  # built, never started: nothing connects
        events_topic="t.events",
        actions_topic="t.actions",
        partitions=1,
        replication_factor=1,
        app_id="t",
        data_dir=tmp_path,
        api_token=TOKEN,
    )
    paths = {resource.canonical for resource in projections_app(settings).router.resources()}
    assert {"/", "/static/app.js", "/static/style.css", "/overview", "/customers/{address}/timeline"} <= paths
    assert "/" not in {r.canonical for r in projections_app(settings, page=False).router.resources()}
