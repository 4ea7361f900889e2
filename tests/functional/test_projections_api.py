"""The projections API over a read model fed directly, as the changelog feeder would feed it."""

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from domain.state import (
    Alert,
    CampaignCounts,
    CampaignState,
    CustomerState,
    EmailChannel,
    InboxMessage,
    SmsChannel,
    encode_campaign,
    encode_state,
)
from projections.api import ApiSettings, create_app, normalize_address
from projections.store import ReadModel

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EMAIL = "jane@example.com"
PHONE = "+33612345678"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


class NoFeeder:
    """The model is fed by the test itself."""

    started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False


def feed(model: ReadModel, *states: CustomerState | CampaignState) -> None:
    for state in states:
        if isinstance(state, CampaignState):
            model.apply(state.key, encode_campaign(state))
        else:
            model.apply(state.address, encode_state(state))


@pytest.fixture
def model() -> ReadModel:
    model = ReadModel()
    # SMS before the link: the phone's own state holds them; then a contact event linked both.
    phone = CustomerState(
        address=PHONE,
        kind="phone",
        phone=PHONE,
        email=EMAIL,
        sms=SmsChannel(sent=2, delivered=2, replies=1, last_delivered_at=T0 + 1000, last_reply_at=T0 + 2000),
        inbox=(InboxMessage(message_id="m1", address=PHONE, at=T0 + 2000, text="hello?"),),
    )
    email = CustomerState(
        address=EMAIL,
        kind="email",
        email=EMAIL,
        phone=PHONE,
        email_channel=EmailChannel(
            sent=2, delivered=2, opens=1, unique_opens=1, clicks=1, last_clicked_at=T0 + 200_000
        ),
        score=6,
        contact_known=True,
        lists=(4,),
        campaigns={"45": CampaignCounts(name="Spring", delivered=2, opens=1, clicks=1)},
    )
    spammer = CustomerState(
        address="joe@example.com",
        kind="email",
        email="joe@example.com",
        spam_reported=True,
        marketing_off_at=T0 + 3000,
        campaigns={"45": CampaignCounts(delivered=1, spam=1), "tag:welcome": CampaignCounts(delivered=1)},
        alerts=(
            Alert(alert_id="al1", kind="spam_report", address="joe@example.com", at=T0 + 3000, campaign="45"),
        ),
    )
    gone = CustomerState(
        address="gone@example.com",
        kind="email",
        last_deleted_at=T0,
        campaigns={"45": CampaignCounts(delivered=1)},
    )
    lifecycle = CampaignState(
        key="campaign:45", camp_id="45", name="Spring sale", status="finished", status_at=T0
    )
    feed(model, phone, email, spammer, gone, lifecycle)
    return model


@pytest.fixture
async def client(aiohttp_client: ClientFactory, model: ReadModel) -> Client:
    return await aiohttp_client(create_app(ApiSettings(TOKEN), model, NoFeeder()))


async def get(client: Client, path: str, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    response = await client.get(path, headers=AUTH if headers is None else headers)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return orjson.loads(await response.read())


PROTECTED = [
    "/customers/jane@example.com",
    "/campaigns",
    "/campaigns/45",
    "/suppressions",
    "/alerts",
    "/inbox",
    "/overview",
    "/customers/jane@example.com/timeline",
]


@pytest.mark.parametrize("path", PROTECTED)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
async def test_every_endpoint_but_openapi_needs_the_token(
    client: Client, path: str, headers: dict[str, str]
) -> None:
    body = await get(client, path, 401, headers)
    assert body["error"] == "Unauthorized"


async def test_linked_customer_is_one_view_from_either_address(client: Client) -> None:
    view = await get(client, "/customers/Jane@Example.com")
    assert view == await get(client, "/customers/+33 6 12 34 56 78")
    assert (view["email"], view["phone"]) == (EMAIL, PHONE)
    assert view["channels"]["email"]["status"] == "active"
    assert view["channels"]["email"]["counts"]["delivered"] == 2
    assert view["channels"]["email"]["open_rate"] == 0.5
    assert view["channels"]["email"]["last_seen"]["clicked_at"] == "2026-01-01T00:03:20Z"
    assert view["channels"]["sms"]["counts"] == {"sent": 2, "delivered": 2, "failed": 0, "replies": 1}
    assert view["channels"]["sms"]["status"] == "ok"
    assert view["channels"]["sms"]["last_seen"]["replied_at"] == "2026-01-01T00:00:02Z"
    assert view["inbox"][0]["text"] == "hello?"
    assert view["campaigns"]["45"]["delivered"] == 2
    assert (view["engagement_score"], view["tier"], view["preferred_channel"]) == (6, "bronze", "email")
    assert view["lists"] == [4]


async def test_customer_errors(client: Client) -> None:
    assert (await get(client, "/customers/nobody@example.com", 404))["error"] == "Not Found"
    assert (await get(client, "/customers/gone@example.com", 404))["error"] == "Not Found"
    assert (await get(client, "/customers/not-an-address", 400))["error"] == "Bad Request"


async def test_campaigns_sum_customers_including_deleted_ones(client: Client) -> None:
    body = await get(client, "/campaigns")
    assert [c["key"] for c in body["campaigns"]] == ["45", "tag:welcome"]
    spring = await get(client, "/campaigns/45")
    assert spring == body["campaigns"][0]
    assert (spring["name"], spring["status"], spring["delivered"], spring["spam"]) == (
        "Spring sale",
        "finished",
        4,
        1,
    )
    assert spring["open_rate"] == 0.25
    welcome = await get(client, "/campaigns/tag:welcome")
    assert (welcome["tag"], welcome["camp_id"], welcome["delivered"]) == ("welcome", None, 1)
    assert (await get(client, "/campaigns/99", 404))["error"] == "Not Found"


async def test_suppressions(client: Client) -> None:
    body = await get(client, "/suppressions")
    assert body["suppressions"] == [
        {
            "address": "joe@example.com",
            "channel": "email",
            "reasons": ["spam_reported", "unsubscribed"],
            "invalid_reason": None,
            "since": "2026-01-01T00:00:03Z",
        }
    ]


async def test_alerts_and_inbox(client: Client, model: ReadModel) -> None:
    alerts = await get(client, "/alerts?limit=5")
    assert alerts["alerts"] == [
        {
            "alert_id": "al1",
            "kind": "spam_report",
            "address": "joe@example.com",
            "at": "2026-01-01T00:00:03Z",
            "campaign": "45",
        }
    ]
    assert (await get(client, "/alerts?before=2026-01-01T00:00:03Z"))["alerts"] == []
    assert len((await get(client, "/alerts?before=2026-01-01T00:00:04Z"))["alerts"]) == 1
    inbox = await get(client, "/inbox?limit=1")
    assert [m["message_id"] for m in inbox["messages"]] == ["m1"]
    model.apply(PHONE, None)
    assert (await get(client, "/inbox"))["messages"] == []


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "limit=501", "limit=-1", "before=yesterday"])
async def test_bad_feed_parameters(client: Client, query: str) -> None:
    body = await get(client, f"/alerts?{query}", 400)
    assert body["error"] == "Bad Request"


async def test_updates_show_at_once(client: Client, model: ReadModel) -> None:
    model.apply("gone@example.com", encode_state(CustomerState(address="gone@example.com", kind="email")))
    assert (await get(client, "/customers/gone@example.com"))["channels"]["email"]["status"] == "active"
    assert (await get(client, "/campaigns/45"))["delivered"] == 3


async def test_openapi_lists_every_route_and_is_public(client: Client) -> None:
    document = await get(client, "/openapi.json", headers={})
    assert document["openapi"].startswith("3.1")
    routes = {r.resource.canonical for r in client.app.router.routes() if r.resource is not None}
    assert set(document["paths"]) == routes
    schemas = document["components"]["schemas"]
    for name in (
        "CustomerView",
        "CampaignStats",
        "CampaignList",
        "SuppressionList",
        "AlertFeed",
        "InboxFeed",
    ):
        assert name in schemas
    assert "ErrorBody" in schemas
    customer = document["paths"]["/customers/{address}"]["get"]
    assert set(customer["responses"]) == {"200", "400", "401", "404"}
    assert customer["parameters"][0]["name"] == "address"
    assert {p["name"] for p in document["paths"]["/alerts"]["get"]["parameters"]} == {"limit", "before"}
    refs = [ref for ref in _refs(document) if ref.startswith("#/components/schemas/")]
    assert refs
    assert all(ref.rsplit("/", 1)[-1] in schemas for ref in refs)


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_normalize_address() -> None:
    assert normalize_address(" Jane@Example.COM ") == EMAIL
    assert normalize_address("0033612345678") == PHONE
    assert normalize_address("hello") is None
