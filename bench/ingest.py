"""Single-event webhook throughput: the real ingester on Kafka against a bare aiohttp handler.

    python -m bench.ingest [--requests 5000] [--seconds 20] [--concurrency 64] [--warmup 300]
                           [--linger-ms 2] [--profile FILE] [--broker-pid PID]

Each server runs in a process of its own (`python -m bench.ingest serve ...`), apart from this load
generator; both listen on 127.0.0.1 with the access log off. The broker is KAFKA_BOOTSTRAP_SERVERS when
set, else a local one (`LocalKafka`) that is stopped at the end. Every request is a new signed Brevo
event (distinct `ts_epoch`), and after the run the topic must hold exactly one event per 200.
"""

import argparse
import asyncio
import contextlib
import cProfile
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from eventlog.kafka import KafkaEventLog, KafkaLogSettings, ensure_topics, topic_partitions
from ingest.app import create_app
from ingest.auth import SIGNATURE_HEADER, sign
from ingest.config import IngestSettings
from samples.brevo import brevo_email
from tajo_events.kafka_local import LocalKafka

SECRET = b"bench-webhook-secret"
WEBHOOK_PATH = "/webhooks/brevo"
PARTITIONS = 4
CUSTOMERS = 512  # distinct addresses, so the events spread over the partitions as real traffic would
BASE_TS_EPOCH_MS = 1_700_000_000_000
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 60.0
PROJECT_ROOT = Path(__file__).resolve().parent.parent
KINDS = ("bare", "ingest")
DEFAULT_LINGER_MS = KafkaLogSettings(bootstrap_servers="", topic="").linger_ms


# --------------------------------------------------------------------------- server process


async def _bare_ok(_request: web.Request) -> web.Response:
    return web.Response()


def _server_app(kind: str, bootstrap: str, topic: str, linger_ms: int) -> web.Application:
    if kind == "bare":
        app = web.Application()
        app.router.add_post(WEBHOOK_PATH, _bare_ok)
        return app
    settings = KafkaLogSettings(bootstrap_servers=bootstrap, topic=topic, linger_ms=linger_ms)
    return create_app(IngestSettings(webhook_secret=SECRET), KafkaEventLog(settings))


async def serve(kind: str, bootstrap: str, topic: str, linger_ms: int, profile: str | None) -> None:
    """Runs one server on a free 127.0.0.1 port, prints `{"port": N}` once it takes requests.

    Ends on SIGTERM or SIGINT, after a clean shut-down (the ingester flushes and closes its producer).
    """
    runner = web.AppRunner(_server_app(kind, bootstrap, topic, linger_ms), access_log=None)
    await runner.setup()  # the ingester connects its producer here
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    sys.stdout.write(orjson.dumps({"port": runner.addresses[0][1]}).decode() + "\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        if profiler is not None and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        await runner.cleanup()


@contextlib.asynccontextmanager
async def server_process(
    kind: str, bootstrap: str, topic: str, linger_ms: int, profile: str | None
) -> AsyncIterator[tuple[int, int]]:
    """Starts `serve` in a child process and yields its port and pid; stops it (SIGTERM) on exit."""
    command = [sys.executable, "-m", "bench.ingest", "serve", "--kind", kind]
    command += ["--bootstrap", bootstrap, "--topic", topic, "--linger-ms", str(linger_ms)]
    if profile:
        command += ["--profile", profile]
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=PROJECT_ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE
    )
    try:
        if proc.stdout is None:
            raise RuntimeError("no stdout pipe to the server process")
        async with asyncio.timeout(READY_TIMEOUT_S):
            line = await proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{kind} server exited before it was ready (code {await proc.wait()})")
        yield int(orjson.loads(line)["port"]), proc.pid
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


# --------------------------------------------------------------------------- load generator


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc), None when unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _requests(first: int) -> Iterator[tuple[bytes, str]]:
    """Signed single-event bodies, each a new event: the `ts_epoch` (and so the event id) differs."""
    index = first
    while True:
        raw = brevo_email("delivered", email=f"customer{index % CUSTOMERS}@example.com")
        raw["ts_epoch"] = BASE_TS_EPOCH_MS + index
        body = orjson.dumps(raw)
        yield body, sign(SECRET, body)
        index += 1


@dataclass
class PhaseResult:
    """What one phase of load saw: a latency per answered request, the statuses, transport errors."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses[200]

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def percentile_ms(self, fraction: float) -> float:
        """The nearest-rank percentile of the latencies, in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
        return ordered[rank - 1] * 1000


@dataclass(frozen=True)
class Bounds:
    """How much load one phase sends: at most `count` requests, none started after `seconds`."""

    count: int
    seconds: float
    concurrency: int


async def run_phase(
    session: aiohttp.ClientSession, url: str, bodies: Iterator[tuple[bytes, str]], bounds: Bounds
) -> PhaseResult:
    """Sends up to `bounds.count` requests from `bounds.concurrency` workers, starting none late."""
    result = PhaseResult()
    count = bounds.count
    sent = 0
    start = time.perf_counter()
    deadline = start + bounds.seconds

    async def worker() -> None:
        nonlocal sent
        while sent < count and time.perf_counter() < deadline:
            sent += 1
            body, signature = next(bodies)
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
            began = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as error:
                result.errors[type(error).__name__] += 1
                continue
            result.latencies.append(time.perf_counter() - began)
            result.statuses[status] += 1

    await asyncio.gather(*(worker() for _ in range(bounds.concurrency)))
    result.elapsed = time.perf_counter() - start
    return result


@dataclass
class KindResult:
    """One server's warm-up and measured phase, and the CPU each process used during the latter."""

    kind: str
    warmup: PhaseResult
    measured: PhaseResult
    cpu: dict[str, float | None]

    @property
    def rate(self) -> float:
        return self.measured.ok / self.measured.elapsed if self.measured.elapsed else 0.0


async def load(port: int, pids: dict[str, int | None], options: argparse.Namespace, kind: str) -> KindResult:
    """Warm-up, then the measured phase, against one server."""
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    bodies = _requests(0)
    connector = aiohttp.TCPConnector(limit=options.concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        warmup = await run_phase(session, url, bodies, Bounds(options.warmup, 3600.0, options.concurrency))
        before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
        measured = await run_phase(
            session, url, bodies, Bounds(options.requests, options.seconds, options.concurrency)
        )
        after = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    cpu: dict[str, float | None] = {}
    for name, used in after.items():
        start = before[name]
        cpu[name] = None if used is None or start is None else (used - start) / measured.elapsed
    return KindResult(kind, warmup, measured, cpu)


# --------------------------------------------------------------------------- the log


async def count_events(bootstrap: str, topic: str) -> int:
    """Records in the topic: the sum of its end offsets (a fresh topic, written only by this run)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await topic_partitions(bootstrap, topic)
        if not partitions:
            raise RuntimeError(f"topic {topic} has no partitions")
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- report


HEADER = (
    f"{'server':<7}{'requests':>9}{'200':>7}{'non-200':>8}{'errors':>7}{'seconds':>8}{'req/s':>9}"
    f"{'p50 ms':>8}{'p99 ms':>8}  {'CPU% srv/gen/kafka':>18}{'srv CPU us/req':>15}"
)


def _row(result: KindResult) -> str:
    measured = result.measured
    errors = sum(measured.errors.values())
    cpu = "/".join("-" if used is None else f"{used * 100:.0f}" for used in result.cpu.values())
    server_cpu = result.cpu.get("server")
    per_request = (
        "-"
        if server_cpu is None or not measured.answered
        else f"{server_cpu * measured.elapsed / measured.answered * 1e6:.0f}"
    )
    return (
        f"{result.kind:<7}{measured.answered + errors:>9}{measured.ok:>7}{measured.answered - measured.ok:>8}"
        f"{errors:>7}{measured.elapsed:>8.2f}{result.rate:>9.1f}{measured.percentile_ms(0.50):>8.1f}"
        f"{measured.percentile_ms(0.99):>8.1f}  {cpu:>18}{per_request:>15}"
    )


def _problems(result: KindResult) -> str:
    both = PhaseResult(statuses=result.warmup.statuses + result.measured.statuses)
    both.errors = result.warmup.errors + result.measured.errors
    others = {status: n for status, n in both.statuses.items() if status != 200}
    return f"  {result.kind}: statuses {others or '-'}, errors {dict(both.errors) or '-'}"


async def bench(options: argparse.Namespace, bootstrap: str, broker: str, broker_pid: int | None) -> int:
    """Runs both servers under the same load, prints the table, checks the log; returns the exit code."""
    topic = f"bench-ingest-{uuid.uuid4().hex[:10]}"
    await ensure_topics(bootstrap, {topic: PARTITIONS})
    print(
        f"bench.ingest: POST {WEBHOOK_PATH} on 127.0.0.1, concurrency {options.concurrency}, "
        f"warm-up {options.warmup}, measured up to {options.requests} requests or {options.seconds:g} s"
    )
    print(
        f"kafka {bootstrap} ({broker}), topic {topic} ({PARTITIONS} partitions), "
        f"producer linger_ms {options.linger_ms}"
    )
    results: dict[str, KindResult] = {}
    for kind in KINDS:
        profile = options.profile if kind == "ingest" else None
        async with server_process(kind, bootstrap, topic, options.linger_ms, profile) as (port, pid):
            pids = {"server": pid, "loadgen": os.getpid(), "kafka": broker_pid}
            results[kind] = await load(port, pids, options, kind)
    print()
    print(HEADER)
    for kind in KINDS:
        print(_row(results[kind]))
    bare, ingest = results["bare"], results["ingest"]
    ratio = ingest.rate / bare.rate if bare.rate else float("nan")
    print(f"ratio ingest/bare: {ratio:.2f} (aim >= 0.6)")
    if any(r.answered != r.ok or r.errors for k in KINDS for r in (results[k].warmup, results[k].measured)):
        print("not every request got a 200:")
        for kind in KINDS:
            print(_problems(results[kind]))
    in_log = await count_events(bootstrap, topic)
    acknowledged = ingest.warmup.ok + ingest.measured.ok
    print(f"events in topic: {in_log}; ingest 200s (warm-up + measured): {acknowledged}")
    if in_log != acknowledged:
        print(f"FAIL: the topic holds {in_log} events but the ingester answered 200 to {acknowledged}")
        return 1
    print("OK: one event in the log per 200")
    return 0


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="measured requests per server (5000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="time bound of the measured phase (20)")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent requests (64)")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured requests first (300)")
    parser.add_argument("--linger-ms", type=int, default=DEFAULT_LINGER_MS, help="producer linger_ms")
    parser.add_argument("--profile", help="write a cProfile of the ingest server to this file")
    parser.add_argument(
        "--broker-pid", type=int, help="with KAFKA_BOOTSTRAP_SERVERS: the broker's pid, to report its CPU"
    )
    sub = parser.add_subparsers(dest="command")
    server = sub.add_parser("serve", help="(internal) run one server under test")
    server.add_argument("--kind", choices=KINDS, required=True)
    server.add_argument("--bootstrap", required=True)
    server.add_argument("--topic", required=True)
    server.add_argument("--linger-ms", type=int, required=True)
    server.add_argument("--profile")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark, or (`serve`) one server under test."""
    options = _parser().parse_args(argv)
    if options.command == "serve":
        asyncio.run(serve(options.kind, options.bootstrap, options.topic, options.linger_ms, options.profile))
        return 0
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        return asyncio.run(bench(options, configured, "KAFKA_BOOTSTRAP_SERVERS", options.broker_pid))
    with LocalKafka(num_partitions=PARTITIONS) as kafka:
        return asyncio.run(
            bench(options, kafka.bootstrap_servers, "local broker, stopped at the end", kafka.pid)
        )


if __name__ == "__main__":
    sys.exit(main())
