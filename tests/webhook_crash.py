"""Crashing a real webhook server under concurrent load, and what its log must hold afterwards.

Many client tasks POST distinct events at once (single events and small batches, signed or with the
bearer token); as soon as enough 200s have come back the server is killed with SIGKILL while other
requests are still in flight. A 200 promises that the request's events are in the log: each must be
there exactly once, whatever happened to the requests the crash cut short.
"""

import asyncio
import itertools
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

from ingest.auth import sign
from samples.brevo import Raw, brevo_email
from schemas.brevo import event_id
from tests.processes import eventually, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SECRET = b"crash-secret"
WEBHOOK_TOKEN = "crash-webhook-token"
CLIENTS = 64
BATCH = 3  # every fourth request carries this many events, the others one


def webhook_env() -> dict[str, str]:
    """This environment without its BREVO_*, TAJO_* and KAFKA_* settings, plus both webhook credentials."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("BREVO_", "TAJO_", "KAFKA_"))}
    return inherited | {"BREVO_WEBHOOK_SECRET": SECRET.decode(), "BREVO_WEBHOOK_TOKEN": WEBHOOK_TOKEN}


class Server:
    """A webhook server in a process group of its own, its output kept in a file."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], output: Path, ready: str) -> None:
        self.port = free_port()
        self.argv = [*argv, "--port", str(self.port)]
        self.env = dict(env)
        self.output = output
        self.ready = ready  # what the server prints once it listens
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/brevo"

    async def start(self) -> "Server":
        """Starts the server and returns once it listens."""
        self.spawn()

        async def listening() -> str:
            assert self.process is not None
            assert self.process.poll() is None, f"the server exited: {self.text()}"
            return self.text()

        await eventually(listening, lambda text: self.ready in text, within=120)
        return self

    def spawn(self) -> None:
        """Starts the server process, its output going to the output file."""
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, *self.argv],
                env=self.env,
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL to the whole process group, as a crash would; returns at once."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Kills the server if it still runs, and reaps it."""
        if self.process is not None:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def text(self) -> str:
        return self.output.read_text(errors="replace")


@dataclass
class Sent:
    """One POST: the ids of its events, and whether a 200 came back for it."""

    events: list[Raw]
    event_ids: list[str]
    acknowledged: bool = False


@dataclass
class Load:
    """What the clients sent, and what they saw before and at the kill."""

    sent: list[Sent] = field(default_factory=list)
    acknowledged: int = 0
    in_flight_at_kill: int = 0
    failures_before_kill: list[str] = field(default_factory=list)

    @property
    def acknowledged_ids(self) -> list[str]:
        return [i for request in self.sent if request.acknowledged for i in request.event_ids]


def request_events(number: int) -> list[Raw]:
    """The distinct events of request `number`: a batch for every fourth, else one event."""
    return [
        brevo_email(
            "delivered",
            email=f"crash{number % 97}@example.com",
            ts_epoch=1_700_000_000_000 + number * 10 + i,
            **{"message-id": f"<crash-{number}-{i}@example.com>"},
        )
        for i in range(BATCH if number % 4 == 0 else 1)
    ]


def headers_for(number: int, body: bytes) -> dict[str, str]:
    """Signed for even requests, the bearer token for odd ones."""
    if number % 2 == 0:
        return {"Content-Type": "application/json", "X-Brevo-Signature": sign(SECRET, body)}
    return {"Content-Type": "application/json", "Authorization": f"Bearer {WEBHOOK_TOKEN}"}


async def post_until_killed(url: str, kill: Callable[[], None], acks_before_kill: int) -> Load:
    """`CLIENTS` tasks POST new requests until `acks_before_kill` 200s came back; then `kill()` runs at once.

    After the kill the tasks send nothing more; the requests it cut short end in connection errors.
    """
    load = Load()
    numbers = itertools.count()
    killed = False
    in_flight = 0

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal killed, in_flight
        while not killed:
            number = next(numbers)
            events = request_events(number)
            request = Sent(events, [event_id(raw) for raw in events])
            load.sent.append(request)
            body = orjson.dumps(events)
            in_flight += 1
            try:
                async with session.post(url, data=body, headers=headers_for(number, body)) as response:
                    answer = await response.read()
            except aiohttp.ClientError as error:
                if not killed:
                    load.failures_before_kill.append(f"request {number}: {error!r}")
                return
            finally:
                in_flight -= 1
            if response.status != 200:
                load.failures_before_kill.append(f"request {number}: {response.status} {answer!r}")
                return
            assert orjson.loads(answer)["event_ids"] == request.event_ids
            request.acknowledged = True
            load.acknowledged += 1
            if load.acknowledged >= acks_before_kill and not killed:
                load.in_flight_at_kill = in_flight  # this request's answer is in; the others' are not
                kill()
                killed = True

    connector = aiohttp.TCPConnector(limit=CLIENTS)
    timeout = aiohttp.ClientTimeout(total=120)  # a guard against a hung server, not a timing assertion
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(CLIENTS)))
    return load


def assert_log_holds(load: Load, logged_ids: Sequence[str], *, whole_requests: bool) -> None:
    """Every acknowledged event is logged exactly once, and the log holds nothing that was not sent.

    With `whole_requests`, each request's events are all in the log or none is (an atomic append).
    """
    assert not load.failures_before_kill, load.failures_before_kill[:5]
    counts = Counter(logged_ids)
    duplicated = sorted(i for i, n in counts.items() if n > 1)
    assert not duplicated, duplicated[:10]
    missing = [i for i in load.acknowledged_ids if i not in counts]
    assert not missing, f"{len(missing)} acknowledged events lost: {missing[:10]}"
    sent = {i for request in load.sent for i in request.event_ids}
    strangers = sorted(set(counts) - sent)
    assert not strangers, strangers[:10]
    if whole_requests:
        partial = [
            r.event_ids for r in load.sent if 0 < sum(i in counts for i in r.event_ids) < len(r.event_ids)
        ]
        assert not partial, partial[:5]
