"""Customer reads at wire speed: the real read models of 100,000 customers against a bare aiohttp handler.

    python -m bench.reads [--seconds 10] [--warmup-s 3] [--connections 32] [--customers 100000]

Placement, on a machine of two CPUs: the server under test runs alone on the second CPU; wrk (one
thread), this script and, for the Kafka setup, the broker, the ingester and the fold worker run on
the first. Every server is served the same way (`tajo_events.serving.run_app`), the baseline being
`bench.bare` and its `GET /api/customers/{address}`. The services under test are the real commands:

- `tajo-events serve` on the embedded log: fed its customers through its own webhook endpoint, it
  folds them in the same process and serves them under `/api/customers/{address}`;
- `tajo-events projections` on Kafka (KAFKA_BOOTSTRAP_SERVERS when set, else a local broker this
  script starts and stops): `tajo-events ingest` takes the webhooks, `tajo-events worker` folds them
  into the engagement table, whose changelog the projections service reads into its read model and
  serves under `/customers/{address}`. The ingester and the worker are stopped once the read model
  holds every customer, before any load: only the projections service runs under it.

Each setup is fed one `delivered` event for each of N distinct customers (`customer<n>@example.com`),
in batched bodies of 500 events with the bearer token real Brevo sends. Before any load, this script
waits until the read model holds them all (the embedded fold applies the log in order, so the last
customer's view is enough; on Kafka, the last changelog record of every partition, once the worker
has folded the whole topic), then checks that every 100th customer (and the last) answers 200 with
its own address, and that an unknown one answers 404.

Each request of the load GETs another customer's view (`bench/lua/customers.lua`), authenticated by
the API's bearer token. Each server gets a warm-up run, not measured, then the measured run, with
a run against the bare handler (served all along, idle but then, on the same CPU) just before and
just after it: the ratio is to the mean of those two, so that a machine shared with other work
compares runs seconds apart, not minutes.
"""

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from bench.wrk import WrkRun, cpus, free_port, pinned, python, run_wrk, server, tajo
from eventlog.generations import changelog_topic
from eventlog.kafka import topic_partitions
from eventlog.kafka_reader import KafkaLogReader, committed_offsets
from samples.brevo import brevo_email
from tajo_events.kafka_local import LocalKafka

TOKEN = "bench-webhook-token"  # noqa: S105 - the benchmark's own throw-away token
API_TOKEN = "bench-api-token"  # noqa: S105 - the same
PARTITIONS = 4
RATIO_BAR = 0.6
BATCH = 500
FEED_CONNECTIONS = 4
SAMPLE_EVERY = 100
BASE_TS_EPOCH_MS = 1_700_000_000_000
FILL_TIMEOUT_S = 600.0
POLL_S = 0.2


def address(n: int) -> str:
    """The address of customer `n`, as the wrk script spells it."""
    return f"customer{n}@example.com"


@dataclass(frozen=True)
class Target:
    """A server holding the customers, ready for load: where its customer views are."""

    name: str
    base: str
    path: str  # up to the address: `<base><path><address>` is a customer's view


@dataclass
class Measured:
    """A measured run against one server, between two runs against the bare handler."""

    target: str
    run: WrkRun
    before: WrkRun  # the bare handler's, just before
    after: WrkRun  # and just after
    check: str

    @property
    def bare_rate(self) -> float:
        """The bare handler's rate around this run: the mean of the runs before and after."""
        return (self.before.rate + self.after.rate) / 2

    @property
    def ratio(self) -> float:
        return self.run.rate / self.bare_rate if self.bare_rate else 0.0


# --------------------------------------------------------------------------- feeding and checking


def _bodies(customers: int) -> Iterator[bytes]:
    """One `delivered` event per customer, in JSON arrays of BATCH events."""
    for first in range(0, customers, BATCH):
        yield orjson.dumps(
            [
                brevo_email(
                    "delivered",
                    email=address(n),
                    ts_epoch=BASE_TS_EPOCH_MS + n,
                    **{"message-id": f"<reads-{n}@bench.example>"},
                )
                for n in range(first, min(first + BATCH, customers))
            ]
        )


async def feed(ingest_base: str, customers: int) -> None:
    """Posts every customer's event to an ingester's webhook endpoint; each body must get a 200."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    bodies = _bodies(customers)
    async with aiohttp.ClientSession(f"{ingest_base}/", headers=headers) as session:

        async def post_all() -> None:
            for body in bodies:  # one generator shared by every connection
                async with session.post("webhooks/brevo", data=body) as response:
                    if response.status != 200:
                        raise RuntimeError(f"webhook answered {response.status}: {await response.text()}")

        await asyncio.gather(*(post_all() for _ in range(FEED_CONNECTIONS)))


async def _status(session: aiohttp.ClientSession, url: str) -> tuple[int, object]:
    async with session.get(url) as response:
        return response.status, await response.json() if response.status in {200, 404} else None


async def until(
    what: str, condition: Callable[[], Awaitable[bool]], timeout_s: float = FILL_TIMEOUT_S
) -> None:
    """Polls `condition` until it holds; a RuntimeError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(POLL_S)


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_TOKEN}"})


async def wait_visible(target: Target, addresses: list[str]) -> None:
    """Until every address's view answers 200."""
    async with _session() as session:

        async def visible() -> bool:
            for each in addresses:
                status, _ = await _status(session, f"{target.base}{target.path}{each}")
                if status != 200:
                    return False
            return True

        await until(f"{', '.join(addresses)} in {target.name}", visible)


async def check_views(target: Target, customers: int) -> str:
    """Every SAMPLE_EVERY-th customer and the last answer 200 with their own address; an unknown 404."""
    sample = [*range(0, customers, SAMPLE_EVERY), customers - 1]
    async with _session() as session:
        wrong: list[str] = []
        for n in sample:
            status, body = await _status(session, f"{target.base}{target.path}{address(n)}")
            if status != 200 or not isinstance(body, dict) or body.get("email") != address(n):
                wrong.append(f"{address(n)}: {status}")
        unknown, _ = await _status(session, f"{target.base}{target.path}{address(customers)}")
    if wrong or unknown != 404:
        return f"FAIL: {len(wrong)} of {len(sample)} sampled views wrong ({wrong[:3]}), unknown {unknown}"
    return f"ok: {len(sample)} sampled views of {customers:,} right, unknown 404"


# --------------------------------------------------------------------------- the servers


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """What a server needs over this environment: the tokens, no effector (no BREVO_API_KEY), `extra`."""
    return {"BREVO_WEBHOOK_TOKEN": TOKEN, "TAJO_API_TOKEN": API_TOKEN, "BREVO_API_KEY": "", **extra}


async def _last_keys(bootstrap: str, topic: str) -> list[str]:
    """The key of the last record of every non-empty partition of a topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
        consumer.assign(partitions)
        ends = {tp: end for tp, end in (await consumer.end_offsets(partitions)).items() if end > 0}
        keys: dict[TopicPartition, str] = {}
        for tp, end in ends.items():
            consumer.seek(tp, end - 1)
        while len(keys) < len(ends):
            for tp, records in (await consumer.getmany(*ends, timeout_ms=1000)).items():
                for record in records:
                    if record.offset == ends[tp] - 1 and record.key is not None:
                        keys[tp] = record.key.decode()
        return list(keys.values())
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
    bare: Target  # the bare handler, served all along (idle but when loaded)

    def _wrk(self, target: Target, seconds: float) -> WrkRun:
        env = {
            "BENCH_TOKEN": API_TOKEN,
            "BENCH_PATH": target.path,
            "BENCH_CUSTOMERS": str(self.options.customers),
        }
        return run_wrk(
            target.base,
            "customers.lua",
            cpu=self.load_cpu,
            connections=self.options.connections,
            seconds=seconds,
            env=env,
        )

    def warm(self, target: Target) -> None:
        """A run not measured."""
        self._wrk(target, self.options.warmup_s)

    def measure(self, target: Target, check: str) -> Measured:
        """A warm-up run, then the bare handler, the target and the bare handler again, back to back.

        The machine may be shared: what else runs on it changes over a whole benchmark, so the
        target is held to the bare handler measured around it, not minutes before.
        """
        self.warm(target)
        before = self._wrk(self.bare, self.options.seconds)
        run = self._wrk(target, self.options.seconds)
        after = self._wrk(self.bare, self.options.seconds)
        return Measured(target.name, run, before, after, check)

    @contextlib.contextmanager
    def embedded_target(self) -> Iterator[Target]:
        """`tajo-events serve` on a fresh embedded log, holding every customer."""
        port, data = free_port(), Path(tempfile.mkdtemp(prefix="embedded-", dir=self.work))
        env = _child_env({"TAJO_DATA_DIR": str(data), "KAFKA_BOOTSTRAP_SERVERS": ""})
        command = tajo("serve", "--port", str(port))
        log = self.work / "serve.log"
        with server("serve", command, cpu=self.server_cpu, port=port, env=env, log=log) as serve:
            target = Target("serve (embedded log)", serve.base, "/api/customers/")
            started = time.monotonic()
            asyncio.run(feed(serve.base, self.options.customers))
            # the fold applies the log in order: the last customer's view comes after every other
            asyncio.run(wait_visible(target, [address(self.options.customers - 1)]))
            print(
                f"  {target.name}: {self.options.customers:,} customers in {time.monotonic() - started:.0f} s"
            )
            yield target

    def embedded(self) -> Measured:
        with self.embedded_target() as target:
            return self.measure(target, asyncio.run(check_views(target, self.options.customers)))

    @contextlib.contextmanager
    def kafka_target(self) -> Iterator[Target]:
        """`tajo-events projections` whose read model holds every customer, the feeders stopped."""
        app_id = f"bench-reads-{uuid.uuid4().hex[:10]}"
        events = f"{app_id}.events"
        env = _child_env(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "TAJO_APP_ID": app_id,
                "TAJO_EVENTS_TOPIC": events,
                "TAJO_ACTIONS_TOPIC": f"{app_id}.actions",
                "TAJO_PARTITIONS": str(PARTITIONS),
                "TAJO_DATA_DIR": tempfile.mkdtemp(prefix="kafka-", dir=self.work),
            }
        )
        api_port, ingest_port = free_port(), free_port()
        api_command = tajo("projections", "--port", str(api_port))
        log = self.work / "projections.log"
        with server("projections", api_command, cpu=self.server_cpu, port=api_port, env=env, log=log) as api:
            target = Target("projections (Kafka)", api.base, "/customers/")
            started = time.monotonic()
            with (
                server(
                    "ingest",
                    tajo("ingest", "--port", str(ingest_port)),
                    cpu=self.load_cpu,
                    port=ingest_port,
                    env=env,
                    log=self.work / "ingest.log",
                ) as ingest,
                pinned(tajo("worker"), cpu=self.load_cpu, env=env, log=self.work / "worker.log"),
            ):
                asyncio.run(feed(ingest.base, self.options.customers))
                asyncio.run(self._folded(app_id, events))
                last = asyncio.run(_last_keys(self.bootstrap, changelog_topic(app_id, 0)))
            # the projections apply each changelog partition in order: its last record comes last
            asyncio.run(wait_visible(target, last))
            print(
                f"  {target.name}: {self.options.customers:,} customers in {time.monotonic() - started:.0f} s"
            )
            yield target

    async def _folded(self, group: str, topic: str) -> None:
        head = await KafkaLogReader(self.bootstrap, topic).head()

        async def done() -> bool:
            try:
                committed = await committed_offsets(self.bootstrap, group, topic)
            except KafkaError:  # no group coordinator yet, on a fresh broker
                return False
            return all(committed.get(p, 0) >= end for p, end in head.items())

        await until(f"the worker to fold {topic}", done)

    def kafka(self) -> Measured:
        with self.kafka_target() as target:
            return self.measure(target, asyncio.run(check_views(target, self.options.customers)))


@contextlib.contextmanager
def _bare(cpu: int, work: Path) -> Iterator[Target]:
    port = free_port()
    command = python("bench.bare", "--port", str(port))
    with server("bare", command, cpu=cpu, port=port, env={}, log=work / "bare.log") as bare:
        yield Target("bare aiohttp", bare.base, "/api/customers/")


@contextlib.contextmanager
def _broker() -> Iterator[tuple[str, str]]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured, "KAFKA_BOOTSTRAP_SERVERS"
        return
    with LocalKafka(num_partitions=PARTITIONS) as kafka:
        yield kafka.bootstrap_servers, "a local broker, stopped at the end"


def _row(name: str, run: WrkRun, ratio: str = "", check: str = "") -> str:
    return (
        f"{name:<24}{run.rate:>9.0f}{run.p50_ms:>8.1f}{run.p99_ms:>8.1f}"
        f"{run.non_2xx + run.socket_errors:>7}{ratio:>7}  {check}"
    ).rstrip()


def bench(options: argparse.Namespace) -> int:
    """Runs every server under the same load; prints the table and the bar; 1 when a check fails."""
    load_cpu, server_cpu = cpus()
    os.sched_setaffinity(0, {load_cpu})  # this script, and the broker it may start, beside wrk
    with contextlib.ExitStack() as stack:
        bootstrap, broker = stack.enter_context(_broker())
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-reads-")))
        bare = stack.enter_context(_bare(server_cpu, work))
        runner = Bench(options, load_cpu, server_cpu, work, bootstrap, bare)
        print(
            f"bench.reads: GET a customer's view of {options.customers:,}; servers on CPU {server_cpu};"
            f" wrk (1 thread, {options.connections} connections), this script and Kafka ({broker}) on CPU"
            f" {load_cpu}; per server: warm-up {options.warmup_s:g} s, then {options.seconds:g} s each"
            " of the bare handler, the server, the bare handler"
        )
        runner.warm(bare)
        results = [runner.embedded(), runner.kafka()]
    print()
    print(f"{'server':<24}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}{'ratio':>7}  views check")
    for result in results:
        print(_row("bare aiohttp, before", result.before))
        print(_row(result.target, result.run, f"{result.ratio:.2f}", result.check))
        print(_row("bare aiohttp, after", result.after))
    print()
    failed = False
    for result in results:
        errors = result.run.non_2xx + result.run.socket_errors
        good = result.ratio >= RATIO_BAR and not errors
        print(
            f"{'PASS' if good else 'MISS'} {result.target}: {result.ratio:.2f}x the bare handler"
            f" ({result.bare_rate:,.0f} req/s around it; bar {RATIO_BAR}), p99 {result.run.p99_ms:.1f} ms,"
            f" {errors} errors"
        )
        failed = failed or result.check.startswith("FAIL")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Parses the options and runs the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.reads", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (10)")
    parser.add_argument("--warmup-s", type=float, default=3.0, help="unmeasured seconds first (3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--customers", type=int, default=100_000, help="customers in each read model")
    return bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
