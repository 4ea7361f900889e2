"""A running pipeline for end-to-end tests: ingester and API in this process, Faust workers as children."""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient

from eventlog.generations import effects_app_id
from eventlog.kafka_reader import KafkaLogReader, committed_offsets
from ingest.auth import sign
from tests.processes import ChildProcess

SECRET = b"pipeline-secret"
API_TOKEN = "api-token-for-tests"
PARTITIONS = 4
Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


@dataclass
class Pipeline:
    """Ingester and projections API in this process, Faust workers as child processes."""

    bootstrap: str
    tmp_path: Path
    ingest: Client
    api: Client
    app_id: str
    topic: str
    workers: list[ChildProcess] = field(default_factory=list)
    worker_env: dict[str, str] = field(default_factory=dict)

    @property
    def command_env(self) -> dict[str, str]:
        """The settings a `tajo-events` command needs to run against this pipeline's broker and topics."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "TAJO_APP_ID": self.app_id,
            "TAJO_EVENTS_TOPIC": self.topic,
            "TAJO_ACTIONS_TOPIC": self.actions_topic,
            "TAJO_PARTITIONS": str(PARTITIONS),
        }

    def start_worker(self) -> ChildProcess:
        env = (
            self.command_env
            | {
                "TAJO_DATA_DIR": str(self.tmp_path / "data"),
                "TAJO_SESSION_TIMEOUT_S": "6",
                "TAJO_STALL_TIMEOUT_S": "20",
                "TAJO_REBALANCE_TIMEOUT_S": "20",  # a worker hung in a rebalance exits after 26 s
            }
            | self.worker_env
        )
        log_path = self.tmp_path / f"worker-{len(self.workers)}.log"
        worker = ChildProcess(["worker"], env, log_path).start()
        self.workers.append(worker)
        return worker

    async def post(self, body: object) -> list[str]:
        data = orjson.dumps(body)
        headers = {"Content-Type": "application/json", "X-Brevo-Signature": sign(SECRET, data)}
        response = await self.ingest.post("/webhooks/brevo", data=data, headers=headers)
        assert response.status == 200, await response.text()
        ids: list[str] = (await response.json())["event_ids"]
        return ids

    async def customer(self, address: str) -> tuple[int, Any]:
        response = await self.api.get(
            f"/customers/{address}", headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        return response.status, await response.json()

    @property
    def actions_topic(self) -> str:
        return f"{self.app_id}.actions"

    async def lag(self) -> int:
        """Records not yet committed by the worker group: of the events topic, and of the actions topic
        when the worker runs an effector."""
        lag = await self.group_lag(self.app_id, self.topic)  # the fold of generation 0
        if "BREVO_API_KEY" in self.worker_env:
            lag += await self.group_lag(effects_app_id(self.app_id), self.actions_topic)
        return lag

    async def group_lag(self, group: str, topic: str) -> int:
        """Records of `topic` the consumer group has not committed yet."""
        committed = await committed_offsets(self.bootstrap, group, topic)
        ends = await KafkaLogReader(self.bootstrap, topic).head()
        return sum(end - committed.get(p, 0) for p, end in ends.items())

    async def get(self, path: str) -> tuple[int, Any]:
        response = await self.api.get(path, headers={"Authorization": f"Bearer {API_TOKEN}"})
        return response.status, await response.json()

    def worker_story(self, lines_per_worker: int = 40) -> str:
        """The last group, recovery, supervisor and warning lines of each worker's log: what a failed
        test prints to tell a hang in a rebalance from a skipped record or a crashed fold."""
        parts = []
        for index, worker in enumerate(self.workers):
            kept = [told for line in worker.output().splitlines() if (told := _story_line(line))]
            parts.append(f"worker-{index} ({worker.log_path}):")
            parts.extend(kept[-lines_per_worker:])
        return "\n".join(parts)


_TOLD_LOGGERS = (
    "aiokafka.consumer.group_coordinator",
    "faust.tables.recovery",
    "tajo_events.supervisor",
    "streams.",
)
_APP_PREFIX = re.compile(r"^test-[0-9a-f]{8}[.-]")
_TOPIC_PARTITION = re.compile(r"TopicPartition\(topic='([^']+)', partition=(\d+)\)")


def _story_line(line: str) -> str | None:
    """The line shortened when it tells of groups, recovery, the supervisor or a warning; else None."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:  # a traceback or a line printed before logging was set up
        return line[:300] if line.strip() else None
    if not isinstance(record, dict):
        return None
    logger = str(record.get("logger", ""))
    if record.get("level") not in {"WARNING", "ERROR", "CRITICAL"} and not logger.startswith(_TOLD_LOGGERS):
        return None
    message = _TOPIC_PARTITION.sub(lambda m: f"{_APP_PREFIX.sub('', m[1])}/{m[2]}", str(record["message"]))
    when = str(record.get("time", ""))[11:23]
    return f"{when} {record.get('pid')} {record.get('level')} {logger}: {message[:300]}"
