"""Kafka fold throughput and memory: a real `tajo-events worker` against a plain aiokafka read of the topic.

    python -m bench.fold_kafka [--events 200000] [--customers 2000] [--memory-customers 100000]
                               [--skip-memory] [--no-pin] [--keep-topics] [--keep-work]
                               [--broker-pid PID] [--stall-s 180]

The broker is KAFKA_BOOTSTRAP_SERVERS when set, else a local one (`LocalKafka`) stopped at the end.
Every phase gets a fresh 4-partition events topic and a fresh app id, so runs never collide; the
topics are deleted at the end unless --keep-topics.

1. Fill: N canonical events (real Brevo payloads through `canonicalize_all`) over C customers, keyed
   by address and produced as the ingester does (idempotent producer, acks=all, default partitioner).
2. Raw read: a plain aiokafka consumer (no group) reads every record from the beginning to the end
   (the first read warms up the broker; the median of the next three is compared).
3. Worker fold: `tajo-events worker` (supervisor and its fold child) folds the topic; its rate is
   measured from its first offset commit to its last, polling the group's committed offsets. The
   worker commits after each batch, and a batch under a backlog is a whole fetch (up to 4 MB per
   partition, some 28,000 events here): the default 200,000 events give some seven commits to time.
4. Check: `tajo-events replay --verify` compares the live table (its changelog) with a rebuild.
5. Memory: VmRSS of the fold process idle on an empty topic, and after folding M customers.

On a machine with two or more CPUs the worker gets the upper half of them, this process and the
broker (when this process started it, or with --broker-pid) the lower half (--no-pin: no pinning).
"""

import argparse
import asyncio
import contextlib
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import JsonValue

from eventlog.generations import fold_app_id
from eventlog.kafka import ensure_topics
from eventlog.kafka_reader import committed_offsets
from samples.brevo import brevo_email
from schemas.brevo import canonicalize_all
from schemas.event import CanonicalEvent, encode_event
from tajo_events.kafka_local import LocalKafka

PARTITIONS = 4
PROJECT_ROOT = Path(__file__).resolve().parent.parent
RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
BASE_TS_EPOCH_MS = 1_700_000_000_000
SEED = 20260101
# (Brevo event, weight): mostly engagement, a few of the events that flip a status and emit actions.
MIX: tuple[tuple[str, int], ...] = (
    ("delivered", 30),
    ("opened", 22),
    ("unique_opened", 12),
    ("click", 20),
    ("hard_bounce", 3),
    ("spam", 2),
    ("unsubscribed", 3),
)
SEND_CHUNK = 5_000  # sends in flight before waiting for their acks
POLL_S = 0.05  # cadence of the committed-offsets poll
READY_TIMEOUT_S = 180.0  # for an idle fold to join its group and recover
SETTLE_S = 2.0  # before reading an idle or finished fold's memory
STOP_TIMEOUT_S = 30.0
MAX_FOLD_STARTS = 3  # a fold started more often than this keeps crashing: give up
MAX_KEYS_SHOWN = 20  # of the keys --verify says differ
READY_LINE = "[^---Recovery]: Worker ready"
# Timed raw reads; the median is the one compared (single reads here vary by a third from one to the next).
RAW_READS = 3  # Faust logs it, prefixed with the process id


class BenchError(Exception):
    """The harness could not measure what it set out to (a timeout, a dead worker, a short read)."""


# --------------------------------------------------------------------------- child processes


def _children_of(pid: int) -> list[int]:
    """The child processes of `pid`: /proc/<pid>/task/*/children, else a scan of /proc/*/stat."""
    found: set[int] = set()
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (task / "children").read_text().split())
    except OSError:
        return []
    if found:
        return sorted(found)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                    found.add(int(entry.name))
    return sorted(found)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def rss_kb(pid: int) -> int:
    """The resident set size of a process (VmRSS in /proc/<pid>/status), in KB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def cpus_of(pid: int) -> str:
    """The CPUs a process may run on, as a short list ("0", "0,1"), or "?" when it is gone."""
    try:
        return ",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(pid)))
    except OSError:
        return "?"


def pin(pid: int, cpus: set[int]) -> None:
    """Pins every thread of a running process (a JVM has many) to `cpus` with `taskset -a -p`."""
    listed = ",".join(str(cpu) for cpu in sorted(cpus))
    subprocess.run(  # noqa: S603 - a fixed command on our own children
        ["taskset", "-a", "-p", "-c", listed, str(pid)],  # noqa: S607 - util-linux on PATH
        check=True,
        stdout=subprocess.DEVNULL,
    )


class Children:
    """Every process group this bench started, so that all of them end however the bench ends."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(
        self, command: list[str], env: dict[str, str], log: Path, errors: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Starts a command in a process group of its own; stdout to `log`, stderr to `errors` or `log`."""
        with log.open("ab") as out, (errors or log).open("ab") as err:
            process = subprocess.Popen(  # noqa: S603 - this project's own command
                command,
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self._processes.append(process)
        return process

    @staticmethod
    def stop(process: subprocess.Popen[bytes]) -> None:
        """SIGTERM to the process group, SIGKILL after STOP_TIMEOUT_S, then SIGKILL to any straggler."""
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the group outlives its leader if a child lingers
        process.wait()

    def stop_all(self) -> None:
        """Stops every group started, the newest first."""
        while self._processes:
            self.stop(self._processes.pop())


# --------------------------------------------------------------------------- the events


def rate_events(events: int, customers: int, kinds: Counter[str]) -> Iterator[CanonicalEvent]:
    """`events` canonical events, customer `n % customers` for the n-th, kinds drawn from MIX."""
    rng = random.Random(SEED)  # noqa: S311 - a repeatable mix, not a secret
    names = [name for name, _ in MIX]
    weights = [weight for _, weight in MIX]
    for n in range(events):
        kind = rng.choices(names, weights)[0]
        extra: dict[str, JsonValue] = {"message-id": f"bench-{n}", "ts_epoch": BASE_TS_EPOCH_MS + n}
        if kind == "click":
            extra["link"] = "https://shop.example.com/" + ("rewards" if rng.random() < 0.25 else "product")
        if kind in ("opened", "click") and rng.random() < 0.2:
            extra["tags"] = ["loyalty-spring"]
        if kind == "hard_bounce":
            extra["reason"] = "mailbox does not exist"
        kinds[kind] += 1
        yield from canonicalize_all(
            brevo_email(kind, email=f"customer{n % customers}@example.com", **extra), RECEIVED
        )


def memory_events(customers: int, kinds: Counter[str]) -> Iterator[CanonicalEvent]:
    """One or two events per customer: a delivery, and an open for every second customer."""
    n = 0
    for customer in range(customers):
        for kind in ("delivered", "opened")[: 1 + customer % 2]:
            extra: dict[str, JsonValue] = {"message-id": f"mem-{n}", "ts_epoch": BASE_TS_EPOCH_MS + n}
            kinds[kind] += 1
            n += 1
            yield from canonicalize_all(
                brevo_email(kind, email=f"member{customer}@example.com", **extra), RECEIVED
            )


@dataclass
class Filled:
    """What a fill put in the topic."""

    events: int
    seconds: float
    kinds: Counter[str]
    per_partition: dict[int, int]


async def fill(bootstrap: str, topic: str, events: Iterable[CanonicalEvent], kinds: Counter[str]) -> Filled:
    """Produces the events as the ingester does: key = address, default partitioner, idempotent, acks=all.

    Unlike the ingester (linger 0, one request's events at a time), sends go out in big batches.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=20,
        max_batch_size=1 << 20,
    )
    await producer.start()
    started = time.perf_counter()
    count = 0
    try:
        pending: list[asyncio.Future[object]] = []
        for event in events:
            pending.append(await producer.send(topic, value=encode_event(event), key=event.key.encode()))
            count += 1
            if len(pending) >= SEND_CHUNK:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    seconds = time.perf_counter() - started
    per_partition = await end_offsets(bootstrap, topic)
    if sum(per_partition.values()) != count:
        raise BenchError(f"produced {count} events but {topic} holds {sum(per_partition.values())}")
    return Filled(count, seconds, kinds, per_partition)


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The end offset of each partition of the topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
        return {tp.partition: int(offset) for tp, offset in ends.items()}
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- raw read


@dataclass(frozen=True)
class Rate:
    """Events over seconds."""

    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")


async def raw_read(bootstrap: str, topic: str, ends: dict[int, int]) -> Rate:
    """Reads every record of the topic with a plain consumer (no group): all partitions, start to end.

    Timed from the assignment (the consumer is connected before, the end offsets known) to the last record.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        await consumer.topics()  # metadata fetched before the clock starts
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        started = time.perf_counter()
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = {tp for tp in partitions if ends[tp.partition] > 0}
        count = 0
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batches.items():
                count += sum(1 for record in records if record.offset < ends[tp.partition])
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp.partition]:
                    remaining.discard(tp)
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
    if count != sum(ends.values()):
        raise BenchError(f"the raw read saw {count} records, the topic holds {sum(ends.values())}")
    return Rate(count, seconds)


# --------------------------------------------------------------------------- the worker


@dataclass(frozen=True)
class Phase:
    """One fresh app: its id (= consumer group of generation 0), topics and local data folder."""

    app_id: str
    work: Path

    @property
    def events_topic(self) -> str:
        return f"{self.app_id}.events"

    @property
    def actions_topic(self) -> str:
        return f"{self.app_id}.actions"

    @property
    def group(self) -> str:
        return fold_app_id(self.app_id, 0)

    @property
    def log(self) -> Path:
        return self.work / f"{self.app_id}.log"

    def env(self, bootstrap: str) -> dict[str, str]:
        """The bench's environment minus KAFKA_*, TAJO_* and BREVO_API_KEY (no effector), plus the phase's."""
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KAFKA_", "TAJO_")) and k != "BREVO_API_KEY"
        }
        return {
            **inherited,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "TAJO_APP_ID": self.app_id,
            "TAJO_EVENTS_TOPIC": self.events_topic,
            "TAJO_ACTIONS_TOPIC": self.actions_topic,
            "TAJO_PARTITIONS": str(PARTITIONS),
            "TAJO_DATA_DIR": str(self.work / f"{self.app_id}-data"),
        }

    async def create_topics(self, bootstrap: str) -> None:
        await ensure_topics(bootstrap, {self.events_topic: PARTITIONS, self.actions_topic: PARTITIONS})

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Worker:
    """`tajo-events worker` (the supervisor) in a process group of its own, optionally pinned."""

    def __init__(self, children: Children, phase: Phase, bootstrap: str, cpus: set[int] | None) -> None:
        self.phase = phase
        command = [sys.executable, "-m", "tajo_events.cli", "worker"]
        if cpus:  # taskset execs the command: the same pid, and every child inherits the CPUs
            command = ["taskset", "-c", ",".join(str(cpu) for cpu in sorted(cpus)), *command]
        self.started = time.perf_counter()
        self.process = children.start(command, phase.env(bootstrap), phase.log)

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(
                f"the worker exited with code {self.process.returncode}; log {self.phase.log.name}:\n"
                + self.phase.log_tail()
            )

    def fold_pid(self) -> int | None:
        """The supervisor's `--role fold` child, None before it is started."""
        for child in _children_of(self.pid):
            arguments = _cmdline(child)
            if "--role" in arguments and "fold" in arguments:
                return child
        return None

    async def wait_fold_ready(self, timeout_s: float) -> int:
        """Waits until the fold child logs that it has joined its group and recovered; returns its pid."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            self.check_alive()
            pid = self.fold_pid()
            if pid is not None:
                with contextlib.suppress(OSError):
                    lines = self.phase.log.read_text(errors="replace").splitlines()
                    if any(f'"pid":{pid},' in line and READY_LINE in line for line in lines):  # JSON lines
                        return pid
            await asyncio.sleep(0.2)
        raise BenchError(f"the fold was not ready within {timeout_s:.0f} s:\n{self.phase.log_tail()}")


@dataclass
class FoldTiming:
    """The committed-offsets polls of one worker run."""

    total: int
    first_t: float = 0.0
    first_committed: int = 0
    last_t: float = 0.0
    wall_s: float = 0.0
    polls: int = 0
    poll_seconds: float = 0.0
    commits_seen: int = 0
    fold_pids: list[int] = field(default_factory=list)  # each fold process the supervisor started

    @property
    def fold_pid(self) -> int | None:
        """The latest fold process seen."""
        return self.fold_pids[-1] if self.fold_pids else None

    @property
    def rate(self) -> Rate | None:
        """From the first poll that saw a commit to the first that saw everything; None if the same poll."""
        if self.last_t <= self.first_t:
            return None
        return Rate(self.total - self.first_committed, self.last_t - self.first_t)


async def measure_fold(bootstrap: str, worker: Worker, total: int, stall_s: float) -> FoldTiming:
    """Polls the group's committed offsets every ~50 ms until they cover the whole topic."""
    phase = worker.phase
    timing = FoldTiming(total)
    committed = 0
    moved = worker.started
    while True:
        asked = time.perf_counter()
        try:
            offsets = await committed_offsets(bootstrap, phase.group, phase.events_topic)
        except KafkaError:
            offsets = {}  # the group may not exist yet
        now = time.perf_counter()
        timing.polls += 1
        timing.poll_seconds += now - asked
        fold_pid = worker.fold_pid()
        if fold_pid is not None and fold_pid != timing.fold_pid:
            timing.fold_pids.append(fold_pid)
            if len(timing.fold_pids) > MAX_FOLD_STARTS:
                raise BenchError(
                    f"the fold was started {len(timing.fold_pids)} times (it keeps exiting); "
                    f"log {phase.log.name}:\n{phase.log_tail()}"
                )
        seen = sum(offsets.values())
        if seen != committed:
            committed, moved = seen, now
            timing.commits_seen += 1
            if timing.first_committed == 0:
                timing.first_t, timing.first_committed = now, committed
        if committed >= total:
            timing.last_t, timing.wall_s = now, now - worker.started
            return timing
        worker.check_alive()
        if now - moved > stall_s:
            raise BenchError(
                f"committed offsets of {phase.group} stuck at {committed}/{total} for {stall_s:.0f} s; "
                f"log {phase.log.name}:\n{phase.log_tail()}"
            )
        await asyncio.sleep(max(0.0, POLL_S - (time.perf_counter() - asked)))


# --------------------------------------------------------------------------- replay --verify


@dataclass(frozen=True)
class Verified:
    """The outcome of `tajo-events replay --verify`."""

    code: int
    seconds: float
    report: list[str]


async def replay_verify(children: Children, phase: Phase, bootstrap: str, timeout_s: float) -> Verified:
    """Runs `tajo-events replay --verify` on the phase's topic and app; its stdout is the verdict."""
    out, err = phase.work / f"{phase.app_id}-verify.out", phase.work / f"{phase.app_id}-verify.err"
    started = time.perf_counter()
    process = children.start(
        [sys.executable, "-m", "tajo_events.cli", "replay", "--verify", "--settle-s", "10"],
        phase.env(bootstrap),
        out,
        err,
    )
    try:
        code = await asyncio.to_thread(process.wait, timeout_s)
    except subprocess.TimeoutExpired:
        raise BenchError(f"replay --verify did not end within {timeout_s:.0f} s") from None
    seconds = time.perf_counter() - started
    lines = out.read_text(errors="replace").splitlines()
    report = [line for line in lines if line.startswith(("live digest", "rebuilt digest", "verify:"))]
    if not any(line.startswith("verify:") for line in report):
        printed = lines + err.read_text(errors="replace").splitlines()
        return Verified(code or 2, seconds, printed[-20:])  # no verdict: show what it printed instead
    keys = [line for line in lines if line.startswith("  ")]  # the differing keys, one a line
    report += keys[:MAX_KEYS_SHOWN] + (
        [f"  ... and {len(keys) - MAX_KEYS_SHOWN} more"] if len(keys) > MAX_KEYS_SHOWN else []
    )
    return Verified(code, seconds, report)


# --------------------------------------------------------------------------- the bench


@dataclass
class Placement:
    """Which CPUs each party may use; None when not pinned."""

    worker: set[int] | None = None
    others: set[int] | None = None
    notes: list[str] = field(default_factory=list)


def plan_placement(enabled: bool) -> Placement:
    """The worker on the upper half of this process's CPUs, the bench (and broker) on the lower half."""
    cpus = sorted(os.sched_getaffinity(0))
    if not enabled:
        return Placement(notes=["not pinned (--no-pin)"])
    if len(cpus) < 2:
        return Placement(notes=[f"not pinned (only cpu {cpus[0]})"])
    half = len(cpus) // 2
    others = set(cpus[:half])
    os.sched_setaffinity(0, others)  # before any thread starts: they all inherit it
    return Placement(worker=set(cpus[half:]), others=others)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


@dataclass
class Options:
    """The command line."""

    events: int
    customers: int
    memory_customers: int
    skip_memory: bool
    pin: bool
    keep_topics: bool
    keep_work: bool
    broker_pid: int | None
    stall_s: float


@dataclass
class Results:
    """Everything one run measured."""

    filled: Filled | None = None
    raw: Rate | None = None
    fold: FoldTiming | None = None
    verified: Verified | None = None
    idle_rss_kb: int | None = None
    memory_filled: Filled | None = None
    memory_fold: FoldTiming | None = None
    memory_rss_kb: int | None = None


async def run_memory(options: Options, children: Children, run: "Run", results: Results) -> None:
    """RSS of an idle fold on an empty topic, then of a fold that has folded M customers."""
    idle = run.phase("idle")
    await idle.create_topics(run.bootstrap)
    worker = Worker(children, idle, run.bootstrap, run.placement.worker)
    try:
        pid = await worker.wait_fold_ready(READY_TIMEOUT_S)
        await asyncio.sleep(SETTLE_S)
        results.idle_rss_kb = rss_kb(pid)
        print(f"idle fold (pid {pid}, cpus {cpus_of(pid)}): VmRSS {results.idle_rss_kb / 1024:.1f} MB")
    finally:
        children.stop(worker.process)

    loaded = run.phase("memory")
    await loaded.create_topics(run.bootstrap)
    kinds: Counter[str] = Counter()
    results.memory_filled = await fill(
        run.bootstrap, loaded.events_topic, memory_events(options.memory_customers, kinds), kinds
    )
    print(
        f"memory fill: {results.memory_filled.events} events over {options.memory_customers} customers "
        f"in {results.memory_filled.seconds:.1f} s"
    )
    worker = Worker(children, loaded, run.bootstrap, run.placement.worker)
    try:
        results.memory_fold = await measure_fold(
            run.bootstrap, worker, results.memory_filled.events, options.stall_s
        )
        await asyncio.sleep(SETTLE_S)
        fold_pid = worker.fold_pid()
        if fold_pid is None:
            raise BenchError("the fold process is gone")
        results.memory_rss_kb = rss_kb(fold_pid)
        print(
            f"memory fold (pid {fold_pid}, cpus {cpus_of(fold_pid)}): all committed after "
            f"{results.memory_fold.wall_s:.1f} s, VmRSS {results.memory_rss_kb / 1024:.1f} MB"
        )
    finally:
        children.stop(worker.process)


@dataclass
class Run:
    """One run of the bench: its broker, its name prefix and its temporary folder."""

    bootstrap: str
    placement: Placement
    work: Path
    prefix: str = field(default_factory=lambda: f"bench-fold-{uuid.uuid4().hex[:8]}")

    def phase(self, name: str) -> Phase:
        return Phase(f"{self.prefix}-{name}", self.work)

    async def delete_topics(self) -> None:
        """Deletes every topic this run created (events, actions, changelogs, control, assignor)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            mine = [topic for topic in await admin.list_topics() if topic.startswith(self.prefix)]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()


async def measure(options: Options, children: Children, run: Run) -> Results:
    """The phases, one after the other; prints progress lines as it goes."""
    results = Results()
    rate = run.phase("rate")
    await rate.create_topics(run.bootstrap)
    kinds: Counter[str] = Counter()
    filled = results.filled = await fill(
        run.bootstrap, rate.events_topic, rate_events(options.events, options.customers, kinds), kinds
    )
    mix = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items(), key=lambda item: -item[1]))
    spread = "/".join(str(filled.per_partition[p]) for p in range(PARTITIONS))
    print(f"fill: {filled.events} events over {options.customers} customers in {filled.seconds:.1f} s")
    print(f"  mix: {mix}; per partition {spread}")

    warmup = await raw_read(run.bootstrap, rate.events_topic, filled.per_partition)  # a fresh JVM is slow
    reads = [await raw_read(run.bootstrap, rate.events_topic, filled.per_partition) for _ in range(RAW_READS)]
    results.raw = sorted(reads, key=lambda read: read.seconds)[len(reads) // 2]
    print(
        f"raw read: {results.raw.events} records in {results.raw.seconds:.2f} s, the median of "
        f"{', '.join(f'{read.seconds:.2f}' for read in reads)} s "
        f"(after an unmeasured warm-up read: {warmup.seconds:.2f} s)"
    )

    worker = Worker(children, rate, run.bootstrap, run.placement.worker)
    try:
        fold = results.fold = await measure_fold(run.bootstrap, worker, filled.events, options.stall_s)
        where = f"supervisor pid {worker.pid} cpus {cpus_of(worker.pid)}"
        if fold.fold_pid is not None:
            where += f", fold pid {fold.fold_pid} cpus {cpus_of(fold.fold_pid)}"
        if len(fold.fold_pids) > 1:
            where += f", fold started {len(fold.fold_pids)} times"
        print(
            f"worker ({where}): all {filled.events} committed {fold.wall_s:.1f} s after start; "
            f"{fold.commits_seen} commits seen in {fold.polls} polls "
            f"(mean poll {fold.poll_seconds / fold.polls * 1000:.0f} ms)"
        )
        results.verified = await replay_verify(
            children, rate, run.bootstrap, timeout_s=600 + filled.events / 100
        )
    finally:
        children.stop(worker.process)

    if not options.skip_memory:
        await run_memory(options, children, run, results)
    return results


def _rate_row(label: str, events: int | None, seconds: float | None, note: str = "") -> str:
    per_second = events / seconds if events is not None and seconds else None
    cells = f"{_fmt(events, 'd'):>9}{_fmt(seconds, '.2f'):>9}{_fmt(per_second, '.0f'):>10}"
    return f"{label:<38}{cells}  {note}".rstrip()


def _memory_rows(options: Options, results: Results) -> list[str]:
    idle, loaded, filled = results.idle_rss_kb, results.memory_rss_kb, results.memory_filled
    if idle is None or loaded is None or filled is None:
        return []
    customers = options.memory_customers
    rows = [
        f"{'memory (fold process VmRSS)':<38}{'customers':>10}{'events':>9}{'MB':>8}{'KB/customer':>13}",
        f"{'idle fold, empty topic':<38}{0:>10}{0:>9}{idle / 1024:>8.1f}{'-':>13}",
        f"{'fold after the memory fill':<38}{customers:>10}{filled.events:>9}{loaded / 1024:>8.1f}"
        f"{loaded / customers:>13.2f}",
        f"{'  minus idle':<38}{'':>10}{'':>9}{(loaded - idle) / 1024:>8.1f}"
        f"{(loaded - idle) / customers:>13.2f}",
    ]
    memory_rate = results.memory_fold.rate if results.memory_fold is not None else None
    if memory_rate is not None:
        rows.append(f"  (that fold, first -> last commit: {memory_rate.per_second:.0f} events/s)")
    return rows


def report(options: Options, results: Results, placement: Placement) -> int:
    """The table, the ratio line and the verdict; returns the exit code (1 when --verify differs)."""
    filled, raw, fold, verified = results.filled, results.raw, results.fold, results.verified
    if filled is None or raw is None or fold is None or verified is None:
        raise BenchError("a phase did not finish")
    fold_rate = fold.rate
    verdict = "equal" if verified.code == 0 else f"DIFFERS (exit {verified.code})"
    rows = [
        f"{'measure':<38}{'events':>9}{'seconds':>9}{'events/s':>10}",
        _rate_row("fill (acks=all, batched)", filled.events, filled.seconds),
        _rate_row("raw read (aiokafka, no group)", raw.events, raw.seconds),
        _rate_row(
            "worker fold (first -> last commit)",
            fold_rate.events if fold_rate else None,
            fold_rate.seconds if fold_rate else None,
            "" if fold_rate else "one commit covered everything: use more events",
        ),
        _rate_row("worker start -> all committed", fold.total, fold.wall_s),
        _rate_row("replay --verify (rebuild + compare)", None, verified.seconds, verdict),
    ]
    memory = _memory_rows(options, results)
    print("\n" + "\n".join(rows) + ("\n\n" + "\n".join(memory) if memory else ""))
    print("\nplacement: " + "; ".join(placement.notes))
    ratio = fold_rate.per_second / raw.per_second if fold_rate is not None else None
    digits = ".2f" if ratio is None or ratio >= 0.1 else ".4f"  # a slow fold still shows a figure
    print(f"worker fold / raw read: {_fmt(ratio, digits)} (bar 0.25)")
    print("replay --verify:")
    for line in verified.report:
        print(f"  {line}")
    return 0 if verified.code == 0 else 1


async def bench(options: Options, children: Children, bootstrap: str, placement: Placement) -> int:
    """Runs the phases in a temporary folder, reports, and deletes the run's topics (and the folder)."""
    work = Path(tempfile.mkdtemp(prefix="bench-fold-"))
    run = Run(bootstrap, placement, work)
    print(
        f"bench.fold_kafka: run {run.prefix}, {PARTITIONS} partitions, {options.events} events over "
        f"{options.customers} customers"
        + ("" if options.skip_memory else f", memory phase {options.memory_customers} customers")
    )
    try:
        return report(options, await measure(options, children, run), placement)
    finally:
        children.stop_all()
        if not options.keep_topics:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                await run.delete_topics()
        if options.keep_work:
            print(f"worker logs and data kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.fold_kafka", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events of the rate phase (200000)")
    parser.add_argument("--customers", type=int, default=2_000, help="customers of the rate phase (2000)")
    parser.add_argument(
        "--memory-customers", type=int, default=100_000, help="customers of the memory phase (100000)"
    )
    parser.add_argument("--skip-memory", action="store_true", help="skip the memory phase")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--keep-topics", action="store_true", help="do not delete the run's topics")
    parser.add_argument(
        "--keep-work", action="store_true", help="keep the folder of worker logs and data (printed)"
    )
    parser.add_argument(
        "--broker-pid", type=int, help="with KAFKA_BOOTSTRAP_SERVERS: the broker's pid, to pin it too"
    )
    parser.add_argument(
        "--stall-s", type=float, default=180.0, help="give up when no offset is committed for this long (180)"
    )
    return parser


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the bench like Ctrl-C: every finally runs


def _pin_broker(pid: int, placement: Placement, label: str) -> None:
    if placement.others is not None:
        pin(pid, placement.others)
    placement.notes.append(f"{label} pid {pid} cpus {cpus_of(pid)}")


def main(argv: list[str] | None = None) -> int:
    """Runs the bench; 0 when done and verified, 1 when --verify differs, 2 when the harness failed."""
    arguments = _parser().parse_args(argv)
    options = Options(
        events=arguments.events,
        customers=arguments.customers,
        memory_customers=arguments.memory_customers,
        skip_memory=arguments.skip_memory,
        pin=not arguments.no_pin,
        keep_topics=arguments.keep_topics,
        keep_work=arguments.keep_work,
        broker_pid=arguments.broker_pid,
        stall_s=arguments.stall_s,
    )
    signal.signal(signal.SIGTERM, _terminate)
    children = Children()
    placement = plan_placement(options.pin)
    if placement.others is not None and placement.worker is not None:
        placement.notes.append(f"bench pid {os.getpid()} cpus {cpus_of(os.getpid())}")
        placement.notes.append(
            f"worker (supervisor and fold) cpus {','.join(map(str, sorted(placement.worker)))}"
        )
    restore: tuple[int, set[int]] | None = None
    try:
        configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if configured:
            print(f"kafka {configured} (KAFKA_BOOTSTRAP_SERVERS)")
            if options.broker_pid is not None:
                restore = (options.broker_pid, os.sched_getaffinity(options.broker_pid))
                _pin_broker(options.broker_pid, placement, "broker")
            else:
                placement.notes.append("broker not pinned (external; --broker-pid pins it)")
            return asyncio.run(bench(options, children, configured, placement))
        print("starting a local Kafka broker ...", flush=True)
        with LocalKafka(num_partitions=PARTITIONS) as kafka:
            print(f"kafka {kafka.bootstrap_servers} (local, ready in {kafka.startup_seconds:.1f} s)")
            if kafka.pid is not None:
                _pin_broker(kafka.pid, placement, "broker (local JVM)")
            try:
                return asyncio.run(bench(options, children, kafka.bootstrap_servers, placement))
            finally:
                children.stop_all()  # before the broker goes
    except BenchError as error:
        print(f"bench.fold_kafka: FAILED: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench.fold_kafka: interrupted", file=sys.stderr)
        return 130
    finally:
        children.stop_all()
        if restore is not None:
            with contextlib.suppress(OSError, subprocess.CalledProcessError):
                pin(*restore)


if __name__ == "__main__":
    sys.exit(main())
