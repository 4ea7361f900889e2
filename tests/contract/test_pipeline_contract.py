"""The pipeline's contract: the same webhooks give byte-identical projections on either adapter.

One fixed input (both Brevo dialects, single and batched bodies, duplicates, several customers and
campaigns) is posted, signed, to the real HTTP ingester of the embedded adapter (SQLite log, fold in
this process) and of the Kafka adapter (a real broker, a Faust worker process, a read model fed by
the changelog). Once each fold has caught up, both read models must have the digest of a reference
that folds the same canonical events directly with the batch core, and both APIs must serve the same
bytes as each other and as the reference.
"""

import os
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaError
from pydantic import JsonValue

from domain.batch import BatchFold
from eventlog.kafka import KafkaEventLog, KafkaLogSettings, ensure_topics
from eventlog.port import LoggedRecord, ReadStart
from eventlog.sqlite import SqliteEventLog
from ingest.app import EVENT_LOG
from ingest.app import create_app as create_ingest_app
from ingest.auth import sign
from ingest.config import IngestSettings
from projections.api import FEEDER, HOLDER, ApiSettings
from projections.api import create_app as create_projections_app
from projections.generational import GenerationalFeeder
from projections.holder import ProjectionHolder
from projections.store import ReadModel
from schemas.brevo import canonicalize_all, split_body
from schemas.event import CanonicalEvent, decode_event, encode_event
from schemas.event_types import EventType
from streams.embedded import EmbeddedRunner
from tajo_events.embedded import create_embedded_app
from tests.coverage_table import CAMPAIGN_EVENTS, INBOUND_BODY, ROWS, UNKNOWN_EVENTS
from tests.integration.pipeline import PARTITIONS, Pipeline
from tests.kafka_helpers import read_topic
from tests.payloads import brevo_email, brevo_sms, seed_email
from tests.processes import ChildProcess, eventually

Raw = dict[str, JsonValue]
Body = Raw | list[Raw]
Client = TestClient[web.Request, web.Application]

SECRET = "contract-webhook-secret"
API_TOKEN = "contract-api-token"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)  # the reference's receive time; no folded event depends on it
CATCH_UP_S = 240.0  # a Faust worker's start and first rebalance are slow on a busy two-core machine
ADAPTERS = ["embedded", pytest.param("kafka", marks=pytest.mark.kafka)]

# -- the fixed input

COVERAGE_EMAILS = ("ann@example.com", "Bob@Example.com", "cy@example.com", "eve@example.com")
COVERAGE_PHONES = ("+33612340001", "+33612340002", "+33612340003")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
BATCH = 4


def shifted(raw: Raw, seconds: int) -> Raw:
    """The payload with every time it carries moved by some seconds, so that events have distinct times."""
    moved = dict(raw)
    for key, scale in (("ts_epoch", 1000), ("ts_event", 1), ("ts", 1)):
        value = moved.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            moved[key] = value + seconds * scale
    date = moved.get("date")
    if isinstance(date, str):
        moved["date"] = (datetime.strptime(date, DATE_FORMAT) + timedelta(seconds=seconds)).strftime(
            DATE_FORMAT
        )
    return moved


def coverage_bodies() -> list[Body]:
    """Every coverage row in each dialect it has: the seed's posted one by one, real Brevo's in batches."""
    bodies: list[Body] = []
    batch: list[Raw] = []
    for index, row in enumerate(ROWS):
        addresses = COVERAGE_PHONES if row.channel == "sms" else COVERAGE_EMAILS
        address = addresses[index % len(addresses)]
        if row.seed is not None:
            bodies.append(shifted(row.seed(address), index * 7))
        if row.brevo is not None:
            batch.append(shifted(row.brevo(address), index * 7 + 3))
        if len(batch) == BATCH:
            bodies.append(batch)
            batch = []
    if batch:
        bodies.append(batch)
    return bodies


LINKING_BATCH: list[Raw] = [
    # Ann's contact gains a phone (real Brevo nests it in `attributes`): her phone's state learns her email.
    {
        "event": "contact_updated",
        "email": "ANN@example.com",
        "key": "k",
        "ts": 1700000500,
        "list_id": [7, 12],
        "attributes": {"SMS": "33612340002"},
    },
    # Eve's contact is created with a phone (seed shape).
    {
        "event": "contact_created",
        "email": "eve@example.com",
        "key": "k",
        "ts": 1700000400,
        "phone": "+33612340003",
        "list_id": [3],
    },
]
SMS_BATCH: list[Raw] = [
    shifted(brevo_sms("sent", to="33612340002"), 60),
    shifted(brevo_sms("delivered", to="33612340002"), 61),
    shifted(brevo_sms("reply", to="33612340002", text="Where is my parcel?"), 62),
    {"event": "sms_reply", "phone": "+33612340003", "text": "STOP", "ts": 1700000700},
    {"event": "sms_reply", "phone": "+33612340001", "text": " help ", "ts": 1700000710},
]
CAMPAIGN_BATCH: list[Raw] = [
    *(payload for _, payload in reversed(CAMPAIGN_EVENTS)),  # camp 45: finished arrives first
    {"event": "campaign_started", "camp_id": 46, "campaign name": "Autumn", "ts": 1700001000},
    {"event": "campaign_paused", "camp_id": 46, "ts": 1700000900},  # older than the start: not the status
]
DUPLICATED_BATCH: list[Raw] = [
    brevo_email("delivered", email="cy@example.com", ts_epoch=1700002000000, tags=["loyalty-spring"]),
    brevo_email(
        "click",
        email="cy@example.com",
        ts_epoch=1700002001000,
        tags=["loyalty-spring"],
        link="https://tajo.example/loyalty/offers",
    ),
]


def scenario_bodies() -> list[Body]:
    """Links, SMS, spam, a deletion, campaigns, late and unknown events, and duplicates."""
    late_delivery = seed_email("delivered", email="ann@example.com", ts=1600000000)
    return [
        LINKING_BATCH,
        SMS_BATCH,
        seed_email("spam", email="bob@example.com", ts=1700000600, tag="loyalty"),
        brevo_email("unsubscribed", email="eve@example.com", ts_epoch=1700000650000, list_id=[3]),
        {
            "event": "contact_updated",
            "email": "dee@example.com",
            "key": "k",
            "ts": 1700000300,
            "list_id": [1],
        },
        seed_email("delivered", email="dee@example.com", ts=1700000310),
        {"event": "contact_deleted", "email": "dee@example.com", "ts": 1700000900},
        {
            "event": "contact_updated",
            "email": "dee@example.com",
            "key": "k",
            "ts": 1700000800,
            "list_id": [2],
        },
        CAMPAIGN_BATCH,
        late_delivery,
        DUPLICATED_BATCH,
        DUPLICATED_BATCH,  # Brevo retrying a whole batch
        [late_delivery, late_delivery],  # one event twice in a batch
        *UNKNOWN_EVENTS,
        INBOUND_BODY,
    ]


def input_bodies() -> list[Body]:
    """The fixed input, in posting order."""
    bodies = coverage_bodies()
    scenario = scenario_bodies()
    half = len(bodies) // 2
    return [*bodies[:half], *scenario[:4], *bodies[half:], *scenario[4:]]


CUSTOMERS = (
    "ann@example.com",
    "bob@example.com",
    "BOB@example.com",
    "cy@example.com",
    "eve@example.com",
    "dee@example.com",
    "nobody@example.com",
    "+33612340001",
    "+33612340002",
    "+33612340003",
    "+33699999999",
)
VIEW_PATHS = (
    *(f"/api/customers/{address}" for address in CUSTOMERS),
    "/api/campaigns",
    "/api/campaigns/45",
    "/api/campaigns/46",
    "/api/campaigns/tag:welcome",
    "/api/campaigns/tag:loyalty-spring",
    "/api/campaigns/999",
    "/api/suppressions",
    "/api/alerts",
    "/api/inbox",
)

# -- the reference: the same canonical events folded directly


def canonical_events(bodies: Iterable[Body]) -> list[CanonicalEvent]:
    """The canonical events of the bodies, as the ingester makes them (at a fixed receive time)."""
    events: list[CanonicalEvent] = []
    for body in bodies:
        for raw, inbound in split_body(orjson.loads(orjson.dumps(body))):
            events.extend(canonicalize_all(raw, RECEIVED, inbound=inbound))
    return events


def fold_log(values: Iterable[bytes]) -> ReadModel:
    """A fresh read model holding the final state of every key after folding the log records in order."""
    folder = BatchFold(_nothing, _nothing)
    folder.add_all(LoggedRecord(0, offset, b"", value, 0) for offset, value in enumerate(values))
    return ReadModel.of(folder.take().states.items())


def _nothing(_key: str) -> bytes | None:
    return None


class NoFeeder:
    """The reference model is complete before its API starts."""

    async def start(self) -> None:
        """Nothing to feed."""

    async def stop(self) -> None:
        """Nothing to stop."""


# -- one run of the pipeline on one adapter


@dataclass(frozen=True)
class Run:
    """What one adapter made of the input: ids answered, ids logged, the read model, the served views."""

    adapter: str
    answered_ids: list[str]
    logged_ids: Counter[str]
    digest: str
    states: dict[str, bytes]
    views: dict[str, tuple[int, bytes]]


def projections_of(app: web.Application) -> web.Application:
    """The projections sub-application mounted under /api/."""
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            return resource.get_info()["app"]
    raise AssertionError("no projections API mounted")


async def post_all(client: Client, bodies: list[Body]) -> list[str]:
    """Posts each body, signed, in order; returns the event ids the ingester answered."""
    ids: list[str] = []
    for body in bodies:
        data = orjson.dumps(body)
        headers = {"Content-Type": "application/json", "X-Brevo-Signature": sign(SECRET.encode(), data)}
        response = await client.post("/webhooks/brevo", data=data, headers=headers)
        assert response.status == 200, await response.text()
        answered: list[str] = (await response.json())["event_ids"]
        ids.extend(answered)
    return ids


async def served_views(client: Client) -> dict[str, tuple[int, bytes]]:
    """Status and exact body bytes of every view path."""
    views: dict[str, tuple[int, bytes]] = {}
    for path in VIEW_PATHS:
        response = await client.get(path, headers=AUTH)
        views[path] = (response.status, await response.read())
    return views


async def capture(adapter: str, client: Client, answered: list[str], logged: list[bytes]) -> Run:
    store = projections_of(client.app)[HOLDER].current.model  # the read model in service
    return Run(
        adapter=adapter,
        answered_ids=answered,
        logged_ids=Counter(decode_event(value).event_id for value in logged),
        digest=store.digest(),
        states=dict(store.canonical_states()),
        views=await served_views(client),
    )


async def run_embedded(data_dir: Path) -> Run:
    """The input through `create_embedded_app`: SQLite log, fold in this process, API under /api/."""
    app = create_embedded_app(data_dir, API_TOKEN)
    async with TestClient(TestServer(app)) as client:
        answered = await post_all(client, input_bodies())
        event_log = app[EVENT_LOG]
        assert isinstance(event_log, SqliteEventLog)
        runner = projections_of(app)[FEEDER]
        assert isinstance(runner, EmbeddedRunner)
        assert sum((await event_log.head()).values()) == len(answered)  # a 200 means appended

        async def folded() -> int:
            return runner.folded

        await eventually(folded, lambda count: count >= len(answered), within=CATCH_UP_S)
        logged = [record.value async for record in event_log.read(ReadStart())]
        return await capture("embedded", client, answered, logged)


async def run_kafka(bootstrap: str, tmp_path: Path) -> Run:
    """The input through the Kafka adapter as `serve` wires it: ingester with the API under /api/, a Faust
    worker process folding the events topic, the read model fed by the table's changelog."""
    app_id = f"contract-{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}.events"
    await ensure_topics(bootstrap, {topic: PARTITIONS, f"{app_id}.actions": PARTITIONS})
    changelog = f"{app_id}-engagement-changelog"  # streams.app.WorkerSettings.changelog_topic
    app = create_ingest_app(
        IngestSettings.from_env(os.environ), KafkaEventLog(KafkaLogSettings(bootstrap, topic))
    )
    holder = ProjectionHolder()
    feeder = GenerationalFeeder(bootstrap, app_id, topic, holder)
    app.add_subapp("/api/", create_projections_app(ApiSettings(API_TOKEN), holder, feeder))
    async with TestClient(TestServer(app)) as client:
        pipeline = Pipeline(bootstrap, tmp_path, client, client, app_id, topic)
        worker = pipeline.start_worker()
        try:
            answered = await post_all(client, input_bodies())

            async def lag() -> int:
                try:
                    return await pipeline.lag()
                except KafkaError:  # a fresh broker has no group coordinator until the first group forms
                    return -1

            await _caught_up(worker, lag, lambda count: count == 0)

            async def unapplied() -> int:
                return len(await read_topic(bootstrap, changelog)) - feeder.applied

            await _caught_up(worker, unapplied, lambda count: count == 0)
            logged = [value for _, value in await read_topic(bootstrap, topic) if value is not None]
            return await capture("kafka", client, answered, logged)
        finally:
            worker.stop()


async def _caught_up(
    worker: ChildProcess, probe: Callable[[], Awaitable[int]], done: Callable[[int], bool]
) -> None:
    try:
        await eventually(probe, done, within=CATCH_UP_S)
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- worker output (tail) ---\n{worker.output()[-4000:]}") from None


# -- each adapter runs the pipeline once per module, in a fixture; its tests share the result


@contextmanager
def contract_env() -> Iterator[None]:
    """The ingester's webhook secret, and no effector: the contract is about states."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BREVO_WEBHOOK_SECRET", SECRET)
        for name in ("BREVO_WEBHOOK_TOKEN", "BREVO_API_KEY"):
            patch.delenv(name, raising=False)
        yield


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def embedded_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The embedded adapter's run of the input."""
    with contract_env():
        return await run_embedded(tmp_path_factory.mktemp("embedded") / "data")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kafka_run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The Kafka adapter's run of the input."""
    with contract_env():
        return await run_kafka(kafka_bootstrap, tmp_path_factory.mktemp("kafka"))


@pytest.fixture(params=ADAPTERS)
def run(request: pytest.FixtureRequest) -> Run:
    """Each adapter's run in turn (only the pipeline of the adapter a test gets is started)."""
    made = request.getfixturevalue(f"{request.param}_run")
    assert isinstance(made, Run)
    return made


async def reference_views() -> dict[str, tuple[int, bytes]]:
    """The view paths as the projections API serves them over the reference model."""
    reference = fold_log(encode_event(event) for event in canonical_events(input_bodies()))
    app = web.Application()
    app.add_subapp("/api/", create_projections_app(ApiSettings(API_TOKEN), reference, NoFeeder()))
    async with TestClient(TestServer(app)) as client:
        return await served_views(client)


# -- the input itself


def test_the_input_covers_both_dialects_batches_duplicates_customers_and_campaigns() -> None:
    bodies = input_bodies()
    events = canonical_events(bodies)
    ids = [event.event_id for event in events]
    kinds = {event.type for event in events}

    assert {row.kind for row in ROWS} | {kind for kind, _ in CAMPAIGN_EVENTS} <= kinds
    assert {EventType.CONTACT_LINKED, EventType.CONTACT_DELETED, EventType.UNKNOWN} <= kinds
    assert sum(isinstance(body, list) and len(body) > 1 for body in bodies) >= 5
    assert any(isinstance(body, dict) and "items" in body for body in bodies)  # inbound parsing
    assert len(ids) - len(set(ids)) >= 3  # a re-sent batch and an event twice in a batch
    keys = {event.key for event in events if event.type is not EventType.UNKNOWN}
    assert len({k for k in keys if "@" in k}) >= 5
    assert len({k for k in keys if k.startswith("+")}) >= 3
    assert {"campaign:45", "campaign:46"} <= keys
    assert len({event.occurred_at for event in events}) > len(events) // 2  # times mostly distinct


async def test_the_reference_is_not_trivial() -> None:
    views = await reference_views()
    bodies = {path: orjson.loads(body) for path, (status, body) in views.items() if status == 200}

    assert views["/api/customers/dee@example.com"][0] == 404  # deleted after a late older update
    assert views["/api/customers/nobody@example.com"][0] == 404
    assert views["/api/customers/bob@example.com"] == views["/api/customers/BOB@example.com"]
    assert bodies["/api/customers/ann@example.com"]["phone"] == "+33612340002"
    assert bodies["/api/customers/+33612340002"]["email"] == "ann@example.com"
    assert bodies["/api/campaigns/45"]["status"] == "finished"
    assert bodies["/api/campaigns/46"]["status"] == "started"
    assert bodies["/api/campaigns/tag:welcome"]["delivered"] > 0
    assert len(bodies["/api/suppressions"]["suppressions"]) >= 3
    assert bodies["/api/alerts"]["alerts"]
    assert bodies["/api/inbox"]["messages"]


# -- each adapter against the reference


@pytest.mark.timeout(900)
def test_the_adapter_logs_the_input_and_folds_it_to_the_reference_digest(run: Run) -> None:
    events = canonical_events(input_bodies())
    reference = fold_log(encode_event(event) for event in events)

    assert run.answered_ids == [event.event_id for event in events]
    assert run.logged_ids == Counter(event.event_id for event in events)
    assert sorted(run.states) == sorted(reference.canonical_states())
    differing = sorted(k for k in run.states if run.states[k] != reference.canonical_states()[k])
    assert differing == []
    assert run.digest == reference.digest()


@pytest.mark.timeout(900)
async def test_the_adapter_serves_what_the_reference_serves(run: Run) -> None:
    expected = await reference_views()

    assert [p for p in VIEW_PATHS if run.views[p] != expected[p]] == []


# -- the two adapters against each other


@pytest.mark.kafka
@pytest.mark.timeout(900)
def test_both_adapters_give_the_same_digest_and_serve_byte_identical_views(
    embedded_run: Run, kafka_run: Run
) -> None:
    embedded, kafka = embedded_run, kafka_run
    assert embedded.digest == kafka.digest
    assert embedded.states == kafka.states
    for path in VIEW_PATHS:
        assert embedded.views[path] == kafka.views[path], path
    statuses = Counter(status for status, _ in embedded.views.values())
    assert statuses == Counter({200: len(VIEW_PATHS) - 4, 404: 4})  # dee, nobody, +33699999999, 999
