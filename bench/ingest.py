"""Webhook ingest at wire speed: the real services against a bare aiohttp handler, loaded by wrk.

    python -m bench.ingest [--seconds 10] [--warmup-s 3] [--connections 32]
                           [--batch 500] [--batch-connections 4]

Placement, on a machine of two CPUs: the server under test runs alone on the second CPU; wrk (one
thread), this script and the Kafka broker run on the first. Every server is served the same way
(`tajo_events.serving.run_app`), the baseline being `bench.bare`. The services under test are the
real commands: `tajo-events serve` on the embedded log (its fold runs in the same process, on the
same CPU) and `tajo-events ingest` on Kafka (KAFKA_BOOTSTRAP_SERVERS when set, else a local broker
this script starts and stops). Each request is a new Brevo event (`bench/lua/events.lua`),
authenticated by the bearer token real Brevo sends.

Each server gets a warm-up run, not measured, then the measured run. Then the log is read back: every
event acknowledged by a 200 must be in it exactly once (a request still in flight when wrk stops
may add events nobody saw acknowledged: at most one body per connection).
"""

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.wrk import WrkRun, cpus, free_port, python, run_wrk, server, tajo
from eventlog.kafka import topic_partitions
from tajo_events.kafka_local import LocalKafka

TOKEN = "bench-webhook-token"  # noqa: S105 - the benchmark's own throw-away token
API_TOKEN = "bench-api-token"  # noqa: S105 - the same
PARTITIONS = 4
SINGLE_RATIO_BAR = 0.6
P99_BAR_MS = 20.0
BATCH_BAR_EVENTS_S = 50_000


@dataclass(frozen=True)
class Load:
    """One kind of load: events per body and concurrent connections."""

    name: str
    batch: int
    connections: int


@dataclass
class Measured:
    """A measured run against one server, and whether its log holds what it acknowledged."""

    target: str
    load: Load
    run: WrkRun
    check: str = "-"

    @property
    def events_rate(self) -> float:
        return self.run.ok * self.load.batch / self.run.seconds if self.run.seconds else 0.0


def _wrk_env(prefix: str, load: Load) -> dict[str, str]:
    return {"BENCH_TOKEN": TOKEN, "BENCH_PREFIX": prefix, "BENCH_BATCH": str(load.batch)}


def check_log(acknowledged: list[str], logged: list[str], in_flight: int) -> str:
    """'ok' when every acknowledged id is in the log once and the rest is at most what was in flight."""
    counts = Counter(logged)
    twice = sum(1 for n in counts.values() if n > 1)
    missing = sum(1 for event_id in acknowledged if event_id not in counts)
    extra = len(counts) - (len(acknowledged) - missing)
    if missing or twice or extra > in_flight or extra < 0:
        return f"FAIL: {missing} acknowledged missing, {twice} twice, {extra} unacknowledged (<= {in_flight})"
    return f"ok: {len(acknowledged)} acknowledged, each once; {extra} more in flight at the stop"


def _sqlite_ids(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [orjson.loads(value)["event_id"] for (value,) in db.execute("SELECT value FROM events")]


async def _kafka_ids(bootstrap: str, topic: str) -> list[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        ids: list[str] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=10_000)).values():
                ids.extend(orjson.loads(record.value)["event_id"] for record in records if record.value)
        return ids
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Bench:
    """Where things run and for how long: the servers one after another, each loaded the same way."""

    options: argparse.Namespace
    load_cpu: int
    server_cpu: int
    work: Path
    bootstrap: str

    def _drive(self, base: str, load: Load) -> tuple[WrkRun, WrkRun]:
        """The warm-up run, then the measured one, each with event ids of its own."""
        url = f"{base}/webhooks/brevo"
        runs = []
        for phase, seconds in (("warm", self.options.warmup_s), ("run", self.options.seconds)):
            env = _wrk_env(f"{phase}-{uuid.uuid4().hex[:8]}", load)
            runs.append(
                run_wrk(
                    url,
                    "events.lua",
                    cpu=self.load_cpu,
                    connections=load.connections,
                    seconds=seconds,
                    env=env,
                )
            )
        return runs[0], runs[1]

    def bare(self, load: Load) -> Measured:
        port = free_port()
        command = python("bench.bare", "--port", str(port))
        with server(
            "bare", command, cpu=self.server_cpu, port=port, env={}, log=self.work / "bare.log"
        ) as bare:
            _, run = self._drive(bare.base, load)
        return Measured("bare aiohttp", load, run)

    def embedded(self, load: Load) -> Measured:
        port, data = free_port(), Path(tempfile.mkdtemp(prefix="embedded-", dir=self.work))
        env = {"TAJO_DATA_DIR": str(data), "BREVO_WEBHOOK_TOKEN": TOKEN, "TAJO_API_TOKEN": API_TOKEN}
        command = tajo("serve", "--port", str(port))
        log = self.work / "serve.log"
        with server("serve", command, cpu=self.server_cpu, port=port, env=env, log=log) as serve:
            warm, run = self._drive(serve.base, load)
        logged = _sqlite_ids(data / "log.db")
        check = check_log(warm.ids + run.ids, logged, 2 * load.connections * load.batch)
        return Measured("serve (embedded log)", load, run, check)

    def kafka(self, load: Load) -> Measured:
        port, topic = free_port(), f"bench-ingest-{uuid.uuid4().hex[:10]}"
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "TAJO_EVENTS_TOPIC": topic,
            "TAJO_PARTITIONS": str(PARTITIONS),
            "BREVO_WEBHOOK_TOKEN": TOKEN,
        }
        command = tajo("ingest", "--port", str(port))
        log = self.work / "ingest.log"
        with server("ingest", command, cpu=self.server_cpu, port=port, env=env, log=log) as ingest:
            warm, run = self._drive(ingest.base, load)
        logged = asyncio.run(_kafka_ids(self.bootstrap, topic))
        check = check_log(warm.ids + run.ids, logged, 2 * load.connections * load.batch)
        return Measured("ingest (Kafka)", load, run, check)


@contextlib.contextmanager
def _broker() -> Iterator[tuple[str, str]]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured, "KAFKA_BOOTSTRAP_SERVERS"
        return
    with LocalKafka(num_partitions=PARTITIONS) as kafka:
        yield kafka.bootstrap_servers, "a local broker, stopped at the end"


def _row(result: Measured, bare: Measured | None) -> str:
    run = result.run
    ratio = f"{result.run.rate / bare.run.rate:.2f}" if bare is not None and bare.run.rate else "-"
    return (
        f"{result.target:<22}{result.load.name:<13}{run.rate:>9.0f}{result.events_rate:>10.0f}"
        f"{run.p50_ms:>8.1f}{run.p99_ms:>8.1f}{run.non_2xx + run.socket_errors:>7}{ratio:>7}  {result.check}"
    )


def bench(options: argparse.Namespace) -> int:
    """Runs every server under both loads; prints the table and the bars; 1 when a log check fails."""
    load_cpu, server_cpu = cpus()
    os.sched_setaffinity(0, {load_cpu})  # this script, and the broker it may start, beside wrk
    single = Load("1 event", 1, options.connections)
    batched = Load(f"{options.batch} events", options.batch, options.batch_connections)
    with _broker() as (bootstrap, broker), tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        runner = Bench(options, load_cpu, server_cpu, Path(folder), bootstrap)
        print(
            f"bench.ingest: server on CPU {server_cpu}; wrk (1 thread), this script and Kafka ({broker}) "
            f"on CPU {load_cpu}; warm-up {options.warmup_s:g} s then {options.seconds:g} s measured per run"
        )
        results: list[tuple[Measured, Measured | None]] = []
        for load in (single, batched):
            bare = runner.bare(load)
            results.append((bare, None))
            results.append((runner.embedded(load), bare))
            results.append((runner.kafka(load), bare))
    print()
    print(f"{'server':<22}{'body':<13}{'req/s':>9}{'events/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
          f"{'ratio':>7}  log check")  # fmt: skip
    for result, baseline in results:
        print(_row(result, baseline))
    print()
    failed = False
    for result, baseline in results:
        if baseline is None:
            continue
        if result.load.batch == 1:
            ratio = result.run.rate / baseline.run.rate
            good = ratio >= SINGLE_RATIO_BAR and result.run.p99_ms < P99_BAR_MS
            print(
                f"{'PASS' if good else 'MISS'} {result.target}, single events: {ratio:.2f}x the bare handler "
                f"(bar {SINGLE_RATIO_BAR}), p99 {result.run.p99_ms:.1f} ms (bar < {P99_BAR_MS:g})"
            )
        else:
            good = result.events_rate >= BATCH_BAR_EVENTS_S
            print(
                f"{'PASS' if good else 'MISS'} {result.target}, {result.load.batch}-event bodies: "
                f"{result.events_rate:,.0f} events/s into the log (bar {BATCH_BAR_EVENTS_S:,})"
            )
        failed = failed or result.check.startswith("FAIL")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Parses the options and runs the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (10)")
    parser.add_argument("--warmup-s", type=float, default=3.0, help="unmeasured seconds first (3)")
    parser.add_argument("--connections", type=int, default=32, help="connections, single events (32)")
    parser.add_argument("--batch", type=int, default=500, help="events per batched body (500)")
    parser.add_argument("--batch-connections", type=int, default=4, help="connections, batches (4)")
    return bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
