"""Chaos on Kafka: `kill -9` of the ingester, of the fold, of a whole worker and of the broker, each twice,
under a ledger of signed webhooks; nothing acknowledged is lost or counted twice.

Every part runs as the operator runs it, each in its own process: `tajo-events kafka --data-dir`
(a broker of this test's own, killed and started again on the same folder and port),
`tajo-events ingest`, `tajo-events worker` (a supervisor and its fold child), and at the end
`tajo-events projections` and `tajo-events replay --verify`. After each kill the test waits, on
conditions, until the pipeline is whole again: the ingester answers 200s, the fold has committed
everything the log held once it was back. In the end each customer's `delivered` count in the views
must equal the ledger's, and `replay --verify` must find the live state equal to a rebuild.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiokafka.errors import KafkaError

from eventlog.kafka_reader import KafkaLogReader, committed_offsets
from eventlog.port import LogUnavailable
from tests.broker_command import Broker
from tests.chaos.ledger import Ledger, describe, settled_differences
from tests.chaos.services import Service, Worker
from tests.processes import eventually, run_command

pytestmark = [pytest.mark.chaos, pytest.mark.kafka]

SECRET = b"chaos-kafka-secret"
API_TOKEN = "chaos-kafka-api-token"
ROUNDS = 2  # each kind of kill this many times
ACKS_BETWEEN_KILLS = 60  # events the ledger gets acknowledged between one kill and the next
RECOVERY_S = 150.0


@dataclass
class Chaos:
    """The running pipeline, what was killed when, and how long each recovery took."""

    broker: Broker
    env: dict[str, str]
    tmp_path: Path
    ingester: Service
    workers: list[Worker] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)

    @property
    def app_id(self) -> str:
        return self.env["TAJO_APP_ID"]

    @property
    def topic(self) -> str:
        return self.env["TAJO_EVENTS_TOPIC"]

    async def start_worker(self) -> Worker:
        worker = Worker(self.env, self.tmp_path / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        await worker.start()
        return worker

    async def head(self) -> dict[int, int] | str:
        """The events topic's head; why it is not known, if not (the broker may be starting)."""
        try:
            async with asyncio.timeout(20):
                return await KafkaLogReader(self.broker.bootstrap, self.topic, request_timeout_s=10).head()
        except (LogUnavailable, KafkaError, TimeoutError, OSError) as error:
            return repr(error)

    async def folded_up_to_now(self, ledger: Ledger) -> None:
        """Waits until the fold has committed every record the log held when this was called."""
        head = await eventually(self.head, lambda found: isinstance(found, dict), within=RECOVERY_S)
        assert isinstance(head, dict)

        async def committed() -> dict[int, int] | str:
            ledger.check()
            try:
                async with asyncio.timeout(20):
                    return await committed_offsets(self.broker.bootstrap, self.app_id, self.topic)
            except (KafkaError, TimeoutError, OSError) as error:
                return repr(error)

        await eventually(
            committed,
            lambda found: isinstance(found, dict) and all(found.get(p, 0) >= end for p, end in head.items()),
            within=RECOVERY_S,
        )

    async def acknowledging(self, ledger: Ledger, more: int = ACKS_BETWEEN_KILLS) -> None:
        """Waits until the ledger got `more` events acknowledged from now on."""
        target = ledger.events + more

        async def events() -> int:
            ledger.check()
            return ledger.events

        await eventually(events, lambda count: count >= target, within=RECOVERY_S)

    async def step(self, what: str, ledger: Ledger, action: Callable[[], Awaitable[None]]) -> None:
        loop = asyncio.get_running_loop()
        started, at = loop.time(), ledger.events
        await action()
        self.timeline.append(f"{what} at {at} events: whole again after {loop.time() - started:.1f}s")


@pytest.fixture
async def chaos(tmp_path: Path) -> AsyncIterator[Chaos]:
    broker = Broker(tmp_path / "kafka", tmp_path / "broker.log")
    running: Chaos | None = None
    try:
        bootstrap = await broker.start()
        app_id = f"chaos-{uuid.uuid4().hex[:8]}"
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "TAJO_APP_ID": app_id,
            "TAJO_EVENTS_TOPIC": f"{app_id}.events",
            "TAJO_ACTIONS_TOPIC": f"{app_id}.actions",
            "TAJO_PARTITIONS": "4",
            "TAJO_DATA_DIR": str(tmp_path / "data"),
            "TAJO_SESSION_TIMEOUT_S": "6",
            "TAJO_STALL_TIMEOUT_S": "20",
            "BREVO_WEBHOOK_SECRET": SECRET.decode(),
            "BREVO_WEBHOOK_TOKEN": "",
            "BREVO_API_KEY": "",
            "TAJO_API_TOKEN": API_TOKEN,
        }
        ingester = Service(["ingest"], env, tmp_path / "ingest.log", "Running on")
        running = Chaos(broker, env, tmp_path, ingester)
        await ingester.start()
        yield running
    finally:
        if running is not None:
            running.ingester.stop()
            for worker in running.workers:
                worker.stop()
        broker.stop()


@pytest.mark.timeout(420)
async def test_kill_9_of_ingester_fold_worker_and_broker_loses_and_doubles_nothing(chaos: Chaos) -> None:
    await chaos.start_worker()
    ledger = Ledger(lambda: f"{chaos.ingester.base_url}/webhooks/brevo", SECRET).start()
    try:
        await chaos.step("first fold", ledger, lambda: chaos.folded_up_to_now(ledger))
        for round_ in range(1, ROUNDS + 1):
            await chaos.acknowledging(ledger)
            await chaos.step(f"kill -9 ingester ({round_})", ledger, lambda: restart_ingester(chaos, ledger))
            await chaos.acknowledging(ledger)
            await chaos.step(f"kill -9 fold ({round_})", ledger, lambda: kill_fold(chaos, ledger))
            await chaos.acknowledging(ledger)
            await chaos.step(f"kill -9 worker ({round_})", ledger, lambda: replace_worker(chaos, ledger))
            await chaos.acknowledging(ledger)
            await chaos.step(f"kill -9 broker ({round_})", ledger, lambda: restart_broker(chaos, ledger))
        await ledger.stop()
        chaos.timeline.append(ledger.summary())
        await chaos.folded_up_to_now(ledger)
        await views_match_the_ledger_and_replay_verifies(chaos, ledger)
    finally:
        await ledger.close()


async def restart_ingester(chaos: Chaos, ledger: Ledger) -> None:
    await chaos.ingester.kill()
    await chaos.ingester.start()
    await chaos.acknowledging(ledger, 1)


async def kill_fold(chaos: Chaos, ledger: Ledger) -> None:
    await chaos.workers[-1].kill_fold()  # the supervisor starts another
    await chaos.folded_up_to_now(ledger)


async def replace_worker(chaos: Chaos, ledger: Ledger) -> None:
    await chaos.workers[-1].kill()  # the supervisor and its fold
    await chaos.start_worker()
    await chaos.folded_up_to_now(ledger)


async def restart_broker(chaos: Chaos, ledger: Ledger) -> None:
    await chaos.broker.kill()
    await chaos.broker.start()  # the same folder and port
    await chaos.acknowledging(ledger, 1)
    await chaos.folded_up_to_now(ledger)


async def views_match_the_ledger_and_replay_verifies(chaos: Chaos, ledger: Ledger) -> None:
    projections = Service(["projections"], chaos.env, chaos.tmp_path / "projections.log", "Running on")
    await projections.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            found = await settled_differences(session, projections.base_url, API_TOKEN, ledger, within=90)
    finally:
        projections.stop()
    code, out, err = await run_command(["replay", "--verify"], chaos.env, within=180)
    timeline = "\n".join(chaos.timeline)
    problems = [describe(found, ledger) if isinstance(found, dict) else found] if found else []
    if code != 0:
        problems.append(f"tajo-events replay --verify exited {code}:\n{out[-3000:]}\n{err[-2000:]}")
    print(timeline)  # shown with a failure, or with -s
    assert not problems, "\n\n".join([*problems, timeline])
    assert "equal" in out.lower(), out[-2000:]
