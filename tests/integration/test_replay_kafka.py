"""`tajo-events replay --verify` on Kafka: a rebuild of the events topic against the table's changelog."""

import asyncio
from dataclasses import replace
from typing import TypeVar

import pytest
from aiokafka import AIOKafkaProducer

from domain.state import CustomerState, decode_state, encode_state
from eventlog.generations import effects_app_id
from eventlog.kafka_reader import KafkaLogReader
from eventlog.port import ReadStart
from projections.api import VERSION_HEADER
from tests.fakes.brevo_server import FakeBrevo
from tests.integration.pipeline import API_TOKEN, PARTITIONS, Pipeline
from tests.payloads import Raw, brevo_email
from tests.processes import eventually, run_command

pytestmark = pytest.mark.kafka

T = TypeVar("T")

CUSTOMERS = [f"k{n}@example.com" for n in range(8)]
T0 = 1_767_225_600_000


def mail(address: str, at: int, message_id: str) -> Raw:
    """A delivery to `address` at `at` (epoch ms)."""
    return brevo_email("delivered", email=address, ts_epoch=at, **{"message-id": message_id})


async def replay(pipeline: Pipeline, *args: str) -> tuple[int, str, str]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": pipeline.bootstrap,
        "TAJO_APP_ID": pipeline.app_id,
        "TAJO_EVENTS_TOPIC": pipeline.topic,
        "TAJO_ACTIONS_TOPIC": pipeline.actions_topic,
        "TAJO_PARTITIONS": str(PARTITIONS),
    }
    return await run_command(["replay", *args], env, within=180)


def delivered(result: tuple[int, object]) -> int:
    status, view = result
    if status != 200 or not isinstance(view, dict):
        return 0
    count: int = view["channels"]["email"]["counts"]["delivered"]
    return count


async def test_verify_on_kafka_finds_equality_then_names_a_corrupted_customer(pipeline: Pipeline) -> None:
    pipeline.start_worker()
    for n in range(10):
        batch = [
            brevo_email("delivered", email=a, ts_epoch=T0 + n * 1000 + c, **{"message-id": f"k{n}-{c}"})
            for c, a in enumerate(CUSTOMERS)
        ]
        batch += [brevo_email("opened", email=CUSTOMERS[n % 8], ts_epoch=T0 + n * 1000 + 500)]
        await pipeline.post(batch)
    for address in CUSTOMERS:
        await eventually(lambda a=address: pipeline.customer(a), lambda r: delivered(r) == 10)  # type: ignore[misc]

    code, out, err = await replay(pipeline, "--verify", "--settle-s", "60")
    assert code == 0, out + err
    assert "equals a rebuild" in out

    corrupted = CUSTOMERS[5]
    status, _ = await pipeline.customer(corrupted)
    assert status == 200
    state = await _state_of(pipeline, corrupted)
    wrong = replace(state.email_channel, clicks=99)
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap)
    await producer.start()
    try:  # same key, so the same partition as the table's own record
        await producer.send_and_wait(
            f"{pipeline.app_id}-engagement-changelog",
            encode_state(replace(state, email_channel=wrong)),
            key=corrupted.encode(),
        )
    finally:
        await producer.stop()

    code, out, _ = await replay(pipeline, "--verify", "--settle-s", "3")
    assert code == 1
    assert [line.strip() for line in out.splitlines() if line.startswith("  ")] == [corrupted]


async def _state_of(pipeline: Pipeline, address: str) -> CustomerState:
    latest = None
    async for record in KafkaLogReader(pipeline.bootstrap, f"{pipeline.app_id}-engagement-changelog").read(
        ReadStart()
    ):
        if record.key.decode() == address:
            latest = record.value
    assert latest is not None
    return decode_state(latest)


async def test_replay_on_kafka_switches_generations_while_reads_go_on(pipeline: Pipeline) -> None:
    pipeline.start_worker()
    for n in range(10):
        await pipeline.post(
            [
                brevo_email("delivered", email=a, ts_epoch=T0 + n * 1000 + c, **{"message-id": f"g{n}-{c}"})
                for c, a in enumerate(CUSTOMERS)
            ]
        )
    for address in CUSTOMERS:
        await eventually(lambda a=address: pipeline.customer(a), lambda r: delivered(r) == 10)  # type: ignore[misc]

    steady = CUSTOMERS[1:]  # the first customer gets more events during the replay
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    expected: dict[str, bytes] = {}
    for address in steady:
        response = await pipeline.api.get(f"/customers/{address}", headers=auth)
        assert response.headers[VERSION_HEADER] == "0"
        expected[address] = await response.read()
    seen: dict[str, int] = {}
    wrong: list[tuple[str, int, str]] = []

    async def read_on() -> None:
        while True:
            for address in steady:
                response = await pipeline.api.get(f"/customers/{address}", headers=auth)
                version = response.headers[VERSION_HEADER]
                seen[version] = seen.get(version, 0) + 1
                if response.status != 200 or await response.read() != expected[address]:
                    wrong.append((address, response.status, version))

    async def post_during() -> None:
        for n in range(5):
            at = T0 + 100_000 + n
            await pipeline.post(
                brevo_email("delivered", email=CUSTOMERS[0], ts_epoch=at, **{"message-id": f"d{n}"})
            )

    reader = asyncio.create_task(read_on())
    poster = asyncio.create_task(post_during())
    try:
        code, out, err = await replay(pipeline)
        assert code == 0, out + err
        assert "generation 1 is live" in out
        await poster
        await eventually(lambda: _seen(seen), lambda versions: "1" in versions, within=120)
    finally:
        reader.cancel()
    assert wrong == []
    assert seen.get("0", 0) > len(steady)  # reads went on while the replay ran

    # the new generation's workers fold what comes next, and nothing was lost across the switch
    await pipeline.post(
        brevo_email("delivered", email=CUSTOMERS[0], ts_epoch=T0 + 200_000, **{"message-id": "z"})
    )
    await eventually(lambda: pipeline.customer(CUSTOMERS[0]), lambda r: delivered(r) == 16)
    code, out, _ = await replay(pipeline, "--verify", "--settle-s", "60")
    assert code == 0, out


async def _seen(seen: dict[str, int]) -> set[str]:
    return set(seen)


async def test_a_replay_on_kafka_acts_once_on_what_the_live_fold_had_not_reached(pipeline: Pipeline) -> None:
    async with FakeBrevo(api_key="brevo-key-for-tests") as brevo:
        pipeline.worker_env = {"BREVO_API_KEY": "brevo-key-for-tests", "BREVO_API_BASE_URL": brevo.base_url}
        worker = pipeline.start_worker()
        await pipeline.post({"event": "sms_reply", "phone": "+33612340001", "text": "help", "ts": 1700000000})
        await eventually(lambda: _copy(brevo.sms_sent), lambda sent: len(sent) == 1, within=120)
        await eventually(pipeline.lag, lambda lag: lag == 0, within=120)
        worker.stop()  # nobody folds the next reply before the replay does
        await pipeline.post({"event": "sms_reply", "phone": "+33612340002", "text": "help", "ts": 1700000100})

        code, out, err = await replay(pipeline)
        assert code == 0, out + err
        assert "1 actions queued" in out
        pipeline.start_worker()
        await eventually(lambda: _copy(brevo.sms_sent), lambda sent: len(sent) >= 2, within=120)
        await eventually(
            lambda: pipeline.group_lag(effects_app_id(pipeline.app_id), pipeline.actions_topic),
            lambda lag: lag == 0,
            within=120,
        )
        assert sorted(str(body["recipient"]) for body in brevo.sms_sent) == ["33612340001", "33612340002"]


async def _copy(items: list[T]) -> list[T]:
    return list(items)
