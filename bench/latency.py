"""End-to-end latency: from a webhook's 200 to its effect in `GET /customers/{address}`.

    python -m bench.latency [--rate 1000] [--seconds 30] [--warmup-s 10] [--setup both|embedded|kafka]
                            [--sample-every 10] [--poll-ms 5] [--timeout-s 10] [--drain-s 30]
                            [--no-pin | --server-cpu N --bench-cpu M] [--unpinned-broker] [--keep]

Two setups, one after the other, each on fresh data:

(a) the embedded log: `tajo-events serve` in one child process (webhooks at `/webhooks/brevo`,
    projections under `/api/`);
(b) Kafka: `tajo-events ingest`, `tajo-events worker` and `tajo-events projections` as three child
    processes, on KAFKA_BOOTSTRAP_SERVERS when set, else on a local broker (`LocalKafka`) started
    here and stopped at the end, with a fresh app id and topics.

Before the measured run, the same load runs for `--warmup-s` seconds and is not counted (its own
line says how it went): the first seconds of a fresh setup are slower (the JVM broker compiles
its hot paths, each process's first requests take their slow paths), and the bar is about a steady
load. The load is open loop: event i is posted at t0 + i/rate whatever the earlier answers, over a bounded
pool of connections. Each event is a signed single-event `delivered` webhook for one customer, so
the customer's `channels.email.counts.delivered` goes up by one. Every `--sample-every`-th event is
watched: it goes to a customer that gets no other traffic while it is watched, so the count it must
reach is known exactly; after its 200 the customer's view is polled (every `--poll-ms`, slower only
when more than `--poll-budget` GETs a second would be needed) until the count shows, and the time
from the 200's arrival to the answer that shows it is the sample's latency. A sample not visible
after `--timeout-s` is a timeout, and counts as slower than every visible one in the percentiles.

With two CPUs or more the servers (and a local broker) run on one core, this load generator and
its polling on another (`os.sched_setaffinity`); what ran where is printed. Every child runs in a
process group of its own, killed on exit, on errors and on Ctrl-C.
"""

import argparse
import asyncio
import atexit
import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import aiohttp
import orjson

from ingest.auth import SIGNATURE_HEADER, sign
from samples.brevo import brevo_email
from tajo_events.kafka_local import LocalKafka

SECRET = "bench-latency-secret"  # noqa: S105 - a throw-away secret of a throw-away server
API_TOKEN = "bench-latency-token"  # noqa: S105 - likewise
PARTITIONS = 4
BAR_MS = 250.0
BASE_TS_EPOCH_MS = 1_700_000_000_000
WARMUP_EVENTS = 32  # distinct customers: with 4 partitions every one of them gets some
READY_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 30.0
POLL_REQUEST_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 20.0
LATE_SEND_S = 0.010
PROJECT_ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_PATH = "/webhooks/brevo"
HEALTH_PATH = "/webhooks/brevo/health"


# --------------------------------------------------------------------------- processes and CPUs


def _thread_ids(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def _process_tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _cpu_seconds(root: int, *, tree: bool = True) -> float:
    """User + system CPU seconds used so far by a process (and its descendants unless `tree` is False)."""
    total = 0.0
    for pid in _process_tree(root) if tree else [root]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _run_queue_wait(root: int, *, tree: bool = True) -> float:
    """Seconds the live threads of a process (tree) spent runnable but waiting for their core (schedstat)."""
    total = 0
    for pid in _process_tree(root) if tree else [root]:
        for tid in _thread_ids(pid):
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
    return total / 1e9


def _allowed_cpus(root: int, *, tree: bool = True) -> str:
    """The CPU lists the threads of a process (and of its descendants) may run on, e.g. `0` or `0 | 0-1`."""
    lists: set[str] = set()
    for pid in _process_tree(root) if tree else [root]:
        for tid in _thread_ids(pid):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
                    if line.startswith("Cpus_allowed_list:"):
                        lists.add(line.split(":", 1)[1].strip())
    return " | ".join(sorted(lists)) or "?"


@dataclass(frozen=True)
class Placement:
    """The cores of the servers and of this load generator; None when nothing is pinned."""

    server: frozenset[int] | None
    bench: frozenset[int] | None
    everywhere: frozenset[int] = frozenset()

    @contextlib.contextmanager
    def on_server_core(self) -> Iterator[None]:
        """Runs the block (and whatever it forks) on the servers' core, then returns to the bench's."""
        if self.server is None or self.bench is None:
            yield
            return
        os.sched_setaffinity(0, self.server)
        try:
            yield
        finally:
            os.sched_setaffinity(0, self.bench)

    @contextlib.contextmanager
    def on_all_cores(self) -> Iterator[None]:
        """Runs the block (and whatever it forks) on every core this process was given."""
        if self.server is None or self.bench is None:
            yield
            return
        os.sched_setaffinity(0, self.everywhere)
        try:
            yield
        finally:
            os.sched_setaffinity(0, self.bench)

    def pin_tree(self, root: int) -> None:
        """Moves every thread of a running process tree (a JVM started elsewhere) to the servers' core."""
        if self.server is None:
            return
        for pid in _process_tree(root):
            for tid in _thread_ids(pid):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(tid, self.server)

    def describe(self) -> str:
        if self.server is None or self.bench is None:
            return "not pinned"
        return f"servers on CPU {_cpus(self.server)}, bench (load + polling) on CPU {_cpus(self.bench)}"


def _cpus(cpus: frozenset[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


def choose_placement(options: argparse.Namespace) -> Placement:
    """Two cores out of the ones this process may use; pins this process (its main thread) to the bench's."""
    available = sorted(os.sched_getaffinity(0))
    if options.no_pin:
        return Placement(None, None)
    if len(available) < 2 and (options.server_cpu is None or options.bench_cpu is None):
        print(f"only CPU {available} available: nothing pinned")
        return Placement(None, None)
    server = options.server_cpu if options.server_cpu is not None else available[0]
    bench = options.bench_cpu if options.bench_cpu is not None else next(c for c in available if c != server)
    if server == bench:
        raise SystemExit("--server-cpu and --bench-cpu must differ")
    placement = Placement(frozenset({server}), frozenset({bench}), frozenset(available))
    os.sched_setaffinity(0, {bench})  # before any thread starts: later threads inherit it
    return placement


_LIVE: dict[int, subprocess.Popen[bytes]] = {}


def _kill_leftovers() -> None:
    """The last resort (end of main, interpreter exit): SIGKILL every child group still there."""
    for pid in list(_LIVE):
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        _LIVE.pop(pid, None)


atexit.register(_kill_leftovers)


class Child:
    """A `tajo-events` sub-command in a process group of its own, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.process.pid

    def start(self, placement: Placement) -> "Child":
        with self.log_path.open("ab") as log, placement.on_server_core():
            self.process = subprocess.Popen(  # noqa: S603 - this project's own command
                [sys.executable, "-m", "tajo_events.cli", *self.args],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _LIVE[self.process.pid] = self.process
        return self

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with code {self.process.returncode}; "
                f"last lines of {self.log_path}:\n{self.tail()}"
            )

    def stop(self) -> None:
        """SIGTERM to the leader, a wait, then SIGKILL to the whole group (stragglers included)."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(OSError):
                process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT_S)
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT_S)
        _LIVE.pop(process.pid, None)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment minus its KAFKA_*, TAJO_* and BREVO_* settings (so no effector), plus `extra`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "TAJO_", "BREVO_"))}
    return {**inherited, "BREVO_WEBHOOK_SECRET": SECRET, "TAJO_API_TOKEN": API_TOKEN, **extra}


# --------------------------------------------------------------------------- the system under test


@dataclass
class Target:
    """Where one setup takes webhooks and serves views, and the processes it runs."""

    name: str
    ingest_base: str
    customer_base: str  # `<customer_base>/<address>` is the customer view
    children: list[Child]
    broker: str | None = None  # a note on the broker (Kafka setup)
    broker_pid: int | None = None

    def check_alive(self) -> None:
        for child in self.children:
            child.check_alive()


def _stop_all(children: list[Child]) -> None:
    for child in reversed(children):
        child.stop()


@contextlib.asynccontextmanager
async def embedded_target(work: Path, placement: Placement) -> AsyncIterator[Target]:
    """(a) `tajo-events serve` on the embedded log in a fresh TAJO_DATA_DIR."""
    port = free_port()
    env = child_env({"TAJO_DATA_DIR": str(work / "data")})
    serve = Child("serve", ["serve", "--port", str(port)], env, work / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        serve.start(placement)
        yield Target("(a) embedded log: tajo-events serve", base, f"{base}/api/customers", [serve])
    finally:
        _stop_all([serve])


@contextlib.asynccontextmanager
async def kafka_target(
    work: Path, placement: Placement, bootstrap: str, broker: str, broker_pid: int | None
) -> AsyncIterator[Target]:
    """(b) ingest, worker and projections as three processes on Kafka, with a fresh app id and topics."""
    app_id = f"bench-latency-{uuid.uuid4().hex[:10]}"
    env = child_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "TAJO_APP_ID": app_id,
            "TAJO_EVENTS_TOPIC": f"{app_id}.events",
            "TAJO_ACTIONS_TOPIC": f"{app_id}.actions",
            "TAJO_PARTITIONS": str(PARTITIONS),
            "TAJO_DATA_DIR": str(work / "data"),
        }
    )
    ingest_port, api_port = free_port(), free_port()
    children = [
        Child("ingest", ["ingest", "--port", str(ingest_port)], env, work / "ingest.log"),
        Child("worker", ["worker"], env, work / "worker.log"),
        Child("projections", ["projections", "--port", str(api_port)], env, work / "projections.log"),
    ]
    try:
        for child in children:
            child.start(placement)
        yield Target(
            "(b) Kafka: tajo-events ingest + worker + projections",
            f"http://127.0.0.1:{ingest_port}",
            f"http://127.0.0.1:{api_port}/customers",
            children,
            broker=f"{bootstrap} ({broker}); app id {app_id}, topic {app_id}.events, {PARTITIONS} partitions",
            broker_pid=broker_pid,
        )
    finally:
        _stop_all(children)


# --------------------------------------------------------------------------- requests


def webhook(run: str, index: int, address: str) -> tuple[bytes, dict[str, str]]:
    """A signed single-event `delivered` webhook, a new event each time (message-id and ts_epoch)."""
    raw = brevo_email(
        "delivered", email=address, ts_epoch=BASE_TS_EPOCH_MS + index, **{"message-id": f"<{run}.{index}@b>"}
    )
    body = orjson.dumps(raw)
    return body, {"Content-Type": "application/json", SIGNATURE_HEADER: sign(SECRET.encode(), body)}


AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


async def delivered_count(session: aiohttp.ClientSession, url: str) -> int | str:
    """The view's `channels.email.counts.delivered` (0 on 404), or what went wrong instead."""
    try:
        async with session.get(url, headers=AUTH) as response:
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        return type(error).__name__
    if status == 404:
        return 0
    if status != 200:
        return f"HTTP {status}"
    try:
        return int(orjson.loads(body)["channels"]["email"]["counts"]["delivered"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return "no channels.email.counts.delivered in the view"


async def _answers(
    session: aiohttp.ClientSession, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
) -> int | None:
    """The status of one request, None when it got no answer."""
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with session.request(method, url, headers=headers, data=body or None) as response:
            await response.read()
            return response.status
    return None


async def wait_ready(session: aiohttp.ClientSession, target: Target, run: str) -> int:
    """Waits for the health endpoints, then until warm-up events (one per customer) are all visible.

    Returns how many warm-up events the ingester accepted.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S

    async def until(what: str, done: Callable[[], Awaitable[bool]], pause: float = 0.2) -> None:
        while not await done():
            target.check_alive()
            if loop.time() > deadline:
                raise RuntimeError(f"{what}: not within {READY_TIMEOUT_S:.0f} s")
            await asyncio.sleep(pause)

    health = f"{target.ingest_base}{HEALTH_PATH}"
    health_headers = {SIGNATURE_HEADER: sign(SECRET.encode(), b"")}

    async def ingest_healthy() -> bool:
        return await _answers(session, "GET", health, health_headers) == 200

    async def api_answers() -> bool:
        return await _answers(session, "GET", f"{target.customer_base}/ready@example.com", AUTH) in (200, 404)

    await until(f"GET {health} answering 200", ingest_healthy)
    await until("the projections API answering", api_answers)
    addresses = [f"warmup{n}.{run}@example.com" for n in range(WARMUP_EVENTS)]
    for n, address in enumerate(addresses):
        body, headers = webhook(run, -1 - n, address)

        async def accepted(body: bytes = body, headers: dict[str, str] = headers) -> bool:
            # a re-sent event is the same event: the fold counts it once
            url = f"{target.ingest_base}{WEBHOOK_PATH}"
            return await _answers(session, "POST", url, headers, body) == 200

        await until("a 200 for a warm-up webhook", accepted)
    pending = set(addresses)

    async def all_visible() -> bool:
        for address in sorted(pending):
            if await delivered_count(session, f"{target.customer_base}/{address}") == 1:
                pending.discard(address)
        return not pending

    await until(f"{WARMUP_EVENTS} warm-up events visible", all_visible, pause=0.1)
    return WARMUP_EVENTS


async def accepted_count(session: aiohttp.ClientSession, target: Target) -> int | None:
    """The ingester's own count of accepted events (its health answer), None when it does not say."""
    headers = {SIGNATURE_HEADER: sign(SECRET.encode(), b"")}
    with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError, ValueError):
        async with session.get(f"{target.ingest_base}{HEALTH_PATH}", headers=headers) as response:
            return int(orjson.loads(await response.read())["counters"]["accepted"])
    return None


# --------------------------------------------------------------------------- load and watching


@dataclass
class Sample:
    """One watched event: its customer, the count that shows it, when its 200 came and when it showed."""

    index: int
    address: str
    expected: int
    ok_at: float
    visible_at: float | None = None

    @property
    def latency(self) -> float:
        """Seconds from the 200 to the view showing it; infinite for a timeout."""
        return float("inf") if self.visible_at is None else self.visible_at - self.ok_at


@dataclass
class Options:
    """How the load is shaped and how samples are watched."""

    rate: float
    seconds: float
    sample_every: int
    customers: int
    connections: int
    poll_interval: float
    poll_budget: float
    timeout: float
    drain: float
    warmup: float = 0.0  # seconds of the same load before the measured run, not counted


@dataclass
class Run:
    """What one setup's measured run saw."""

    options: Options
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    send_lags: list[float] = field(default_factory=list)
    webhook_latencies: list[float] = field(default_factory=list)  # scheduled -> 200
    samples: list[Sample] = field(default_factory=list)
    unwatched: int = 0  # samples whose webhook got no 200: not watched
    abandoned: int = 0  # webhooks without an answer at the end of the drain
    overshoots: int = 0  # a view that showed more than expected (should never happen)
    polls: int = 0
    poll_rtts: list[float] = field(default_factory=list)
    poll_problems: Counter[str] = field(default_factory=Counter)
    outstanding: int = 0
    most_outstanding: int = 0
    sending: float = 0.0  # from the first scheduled send to the last send
    elapsed: float = 0.0  # from the first scheduled send to the last answer or watched sample
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per second of the run
    waited: dict[str, float] = field(default_factory=dict)  # run-queue seconds per second of the run
    accepted: int | None = None
    warmup: int = 0
    load_before: float = 0.0  # 1-minute load average of the machine
    load_after: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses[200]


class WatchedCustomers:
    """Customers that only watched events go to, each watched by at most one sample at a time.

    A customer whose count is known exactly (its last sample showed) is reused; one whose last
    sample failed or timed out is dropped, since its count is then unknown.
    """

    def __init__(self, run: str) -> None:
        self._run = run
        self._free: list[tuple[str, int]] = []
        self._made = 0

    def take(self) -> tuple[str, int]:
        if self._free:
            return self._free.pop()
        self._made += 1
        return f"watch{self._made}.{self._run}@example.com", 0

    def give_back(self, address: str, count: int) -> None:
        self._free.append((address, count))

    @property
    def made(self) -> int:
        return self._made


class LoadGenerator:
    """Open-loop webhooks on a fixed schedule, and the watching of every n-th event's customer."""

    def __init__(
        self, target: Target, options: Options, posts: aiohttp.ClientSession, reads: aiohttp.ClientSession
    ) -> None:
        self.target = target
        self.options = options
        self.posts = posts
        self.reads = reads
        self.run_id = uuid.uuid4().hex[:8]
        self.watched = WatchedCustomers(self.run_id)
        self.result = Run(options)
        self.posting: set[asyncio.Task[None]] = set()
        self.watching: set[asyncio.Task[None]] = set()

    @staticmethod
    def _spawn(tasks: set[asyncio.Task[None]], coroutine: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def post(self, index: int, scheduled: float) -> None:
        """Sends event `index` now; watches it when it is a sample and got its 200."""
        result = self.result
        is_sample = index % self.options.sample_every == 0
        if is_sample:
            address, count = self.watched.take()
        else:
            address, count = f"load{index % self.options.customers}.{self.run_id}@example.com", 0
        body, headers = webhook(self.run_id, index, address)
        result.send_lags.append(time.perf_counter() - scheduled)
        try:
            async with self.posts.post(
                f"{self.target.ingest_base}{WEBHOOK_PATH}", data=body, headers=headers
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            result.errors[type(error).__name__] += 1
            result.unwatched += is_sample
            return
        except asyncio.CancelledError:  # no answer by the end of the drain
            result.abandoned += 1
            result.unwatched += is_sample
            raise
        except Exception as error:  # anything else: counted, never lost in an unawaited task
            result.errors[f"{type(error).__name__}: {error}"[:80]] += 1
            result.unwatched += is_sample
            return
        ok_at = time.perf_counter()
        result.statuses[status] += 1
        if status != 200:
            result.unwatched += is_sample
            return
        result.webhook_latencies.append(ok_at - scheduled)
        if is_sample:
            sample = Sample(index, address, count + 1, ok_at)
            result.samples.append(sample)
            self._spawn(self.watching, self.watch(sample))

    async def watch(self, sample: Sample) -> None:
        """Polls the sample's customer until its count shows, or until the timeout."""
        result, options = self.result, self.options
        url = f"{self.target.customer_base}/{sample.address}"
        deadline = sample.ok_at + options.timeout
        result.outstanding += 1
        result.most_outstanding = max(result.most_outstanding, result.outstanding)
        try:
            while True:
                asked = time.perf_counter()
                count = await delivered_count(self.reads, url)
                answered = time.perf_counter()
                result.polls += 1
                result.poll_rtts.append(answered - asked)
                if isinstance(count, str):
                    result.poll_problems[count] += 1
                elif count >= sample.expected:
                    if answered > deadline:
                        return  # a timeout all the same
                    sample.visible_at = answered
                    result.overshoots += count > sample.expected
                    self.watched.give_back(sample.address, count)
                    return
                if answered > deadline:
                    return
                # every poll_interval, slower only when the watched samples together would exceed the budget
                await asyncio.sleep(max(options.poll_interval, result.outstanding / options.poll_budget))
        finally:
            result.outstanding -= 1

    async def run(self) -> Run:
        """Posts rate x seconds events on schedule, then waits for the answers and the watched samples.

        Webhooks still unanswered `drain` seconds after the end of the schedule are abandoned.
        """
        options, result = self.options, self.result
        total = round(options.rate * options.seconds)
        started = time.perf_counter() + 0.05
        for index in range(total):
            scheduled = started + index / options.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            self._spawn(self.posting, self.post(index, scheduled))
            result.sent += 1
            if index % 500 == 0:
                self.target.check_alive()
        result.sending = time.perf_counter() - started
        drain_until = started + options.seconds + options.drain
        if self.posting:
            _, late = await asyncio.wait(self.posting, timeout=max(0.0, drain_until - time.perf_counter()))
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        if self.watching:
            await asyncio.wait(self.watching)  # each ends by its own timeout
        result.elapsed = time.perf_counter() - started
        return result


# --------------------------------------------------------------------------- one setup


def _cpu_snapshot(target: Target) -> dict[str, tuple[float, float]]:
    """CPU seconds used and run-queue seconds waited so far, per process tree of the setup and the bench."""
    pids = {child.name: child.pid for child in target.children}
    if target.broker_pid is not None:
        pids["kafka"] = target.broker_pid
    snapshot = {name: (_cpu_seconds(pid), _run_queue_wait(pid)) for name, pid in pids.items()}
    own = os.getpid()  # its children are the servers: itself only
    snapshot["bench"] = (_cpu_seconds(own, tree=False), _run_queue_wait(own, tree=False))
    return snapshot


def placement_lines(target: Target, placement: Placement) -> list[str]:
    """What runs where, read back from /proc (every thread of every process of each tree)."""
    lines = [f"placement: {placement.describe()}"]
    for child in target.children:
        tree = _process_tree(child.pid)
        extra = f" + {len(tree) - 1} child process(es)" if len(tree) > 1 else ""
        lines.append(
            f"  {child.name:<12} pid {child.pid}{extra}: CPUs {_allowed_cpus(child.pid)}"
            f"  (tajo-events {' '.join(child.args)})"
        )
    if target.broker_pid is not None:
        lines.append(f"  {'kafka':<12} pid {target.broker_pid}: CPUs {_allowed_cpus(target.broker_pid)}")
    elif target.broker is not None:
        lines.append(f"  {'kafka':<12} external broker, not pinned by this bench")
    lines.append(
        f"  {'bench':<12} pid {os.getpid()}: CPUs {_allowed_cpus(os.getpid(), tree=False)}  (load + polling)"
    )
    return lines


async def measure(target: Target, placement: Placement, options: Options) -> Run:
    """Waits for the setup to answer, then runs the load and watches the samples."""
    posts = aiohttp.ClientSession(  # no bound on the wait for a free connection: the drain bounds it
        connector=aiohttp.TCPConnector(limit=options.connections),
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=REQUEST_TIMEOUT_S, sock_read=REQUEST_TIMEOUT_S
        ),
    )
    reads = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=options.connections),
        timeout=aiohttp.ClientTimeout(total=POLL_REQUEST_TIMEOUT_S),
    )
    async with posts, reads:
        generator = LoadGenerator(target, options, posts, reads)
        began = time.perf_counter()
        warmup = await wait_ready(reads, target, generator.run_id)
        print(f"ready in {time.perf_counter() - began:.1f} s (health, then {warmup} warm-up events visible)")
        for line in placement_lines(target, placement):
            print(line)
        if options.warmup > 0:
            print(f"warming up: {options.rate:g} events/s for {options.warmup:g} s (not counted)", flush=True)
            warm = await LoadGenerator(
                target, dataclasses.replace(options, seconds=options.warmup), posts, reads
            ).run()
            warmup += warm.ok
            print(
                f"  warm-up          200s {warm.ok} of {warm.sent}; 200 -> visible"
                f" {_spread([s.latency for s in warm.samples], options.timeout)}"
            )
        print(f"measuring: {options.rate:g} events/s for {options.seconds:g} s ...", flush=True)
        cpu_before = _cpu_snapshot(target)
        load_before = os.getloadavg()[0]
        result = await generator.run()
        result.load_before, result.load_after = load_before, os.getloadavg()[0]
        cpu_after = _cpu_snapshot(target)
        for name, (used, waited) in cpu_after.items():
            result.cpu[name] = (used - cpu_before[name][0]) / result.elapsed
            result.waited[name] = (waited - cpu_before[name][1]) / result.elapsed
        result.warmup = warmup
        result.accepted = await accepted_count(reads, target)
    return result


# --------------------------------------------------------------------------- report


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float, timeout: float | None = None) -> str:
    """Seconds as milliseconds; an infinite latency as a timeout."""
    if seconds == float("inf"):
        return f">{timeout * 1000:.0f} (timeout)" if timeout is not None else "inf"
    return f"{seconds * 1000:.1f}"


def _detail(counts: Mapping[int, int] | Mapping[str, int]) -> str:
    return f" {dict(counts)}" if counts else ""


def _spread(values: list[float], timeout: float | None = None) -> str:
    return (
        f"p50 {ms(percentile(values, 0.50), timeout)} ms, p99 {ms(percentile(values, 0.99), timeout)} ms,"
        f" max {ms(max(values, default=float('nan')), timeout)} ms"
    )


def _by_fifth(result: Run, quantile: float = 0.5) -> str:
    """A percentile of the samples sent in each fifth of the schedule: a growing backlog shows here."""
    total = max(result.sent, 1)
    fifths: list[list[float]] = [[] for _ in range(5)]
    for sample in result.samples:
        fifths[min(4, sample.index * 5 // total)].append(sample.latency)
    return " / ".join(ms(percentile(values, quantile), result.options.timeout) for values in fifths)


def _accepted_line(result: Run) -> str:
    """The ingester's count against the 200s: equal, or within what the unanswered webhooks allow."""
    if result.accepted is None:
        return "unknown (no counters in the ingester's health answer)"
    least = result.warmup + result.ok
    most = least + sum(result.errors.values()) + result.abandoned
    if result.accepted == least:
        verdict = "OK, one per 200"
    elif least <= result.accepted <= most:
        verdict = f"OK, {result.accepted - least} of the {most - least} unanswered webhooks were appended too"
    else:
        verdict = f"MISMATCH: expected {least}..{most}"
    return f"{result.accepted} (warm-up {result.warmup} + 200s {result.ok}): {verdict}"


def _warnings(result: Run) -> list[str]:
    """What makes the numbers less than a clean measurement of the setup."""
    options = result.options
    lines = []
    lag_p99 = percentile(result.send_lags, 0.99)
    if lag_p99 > 0.05 or (result.sending and result.sent / result.sending < 0.95 * options.rate):
        lines.append(
            f"  WARNING: the bench fell behind its schedule (send lag p99 {ms(lag_p99)} ms, run-queue wait"
            f" {result.waited.get('bench', 0) * 1000:.0f} ms/s): the offered load was lower and burstier"
        )
    unanswered = sum(result.errors.values()) + result.abandoned
    if unanswered or result.statuses[200] < result.sent:
        lines.append(
            f"  WARNING: {result.sent - result.ok} of {result.sent} webhooks got no 200:"
            f" the setup did not take {options.rate:g} events/s here"
        )
    return lines


def report(name: str, result: Run) -> list[str]:
    """The lines of one setup's result; the last one is the bar line."""
    options = result.options
    non_200 = sum(n for status, n in result.statuses.items() if status != 200)
    statuses = {status: n for status, n in result.statuses.items() if status != 200}
    late = sum(1 for lag in result.send_lags if lag > LATE_SEND_S)
    latencies = [sample.latency for sample in result.samples]
    timeouts = sum(1 for latency in latencies if latency == float("inf"))
    p99 = percentile(latencies, 0.99)
    cpu = ", ".join(f"{name} {share * 100:.0f}%" for name, share in result.cpu.items())
    waited = ", ".join(f"{name} {share * 1000:.0f}" for name, share in result.waited.items())
    accepted = _accepted_line(result)
    send_rate = result.sent / result.sending if result.sending else 0.0
    poll_rate = result.polls / result.elapsed if result.elapsed else 0.0
    return [
        f"-- {name}: results",
        f"  events sent      {result.sent} in {result.sending:.1f} s ({send_rate:.0f}/s; asked"
        f" {options.rate:g}/s for {options.seconds:g} s); send lag {_spread(result.send_lags)},"
        f" {late} sends >{LATE_SEND_S * 1000:.0f} ms late",
        f"  answers          200s {result.ok}, non-200s {non_200}{_detail(statuses)}, transport errors"
        f" {sum(result.errors.values())}{_detail(result.errors)}, no answer {options.drain:g} s after"
        f" the schedule (abandoned) {result.abandoned}",
        f"  scheduled -> 200 {_spread(result.webhook_latencies)}",
        f"  watched samples  {len(latencies)} (every {options.sample_every}th event), visible"
        f" {len(latencies) - timeouts}, timeouts {timeouts} (>{options.timeout:g} s),"
        f" not watched (no 200) {result.unwatched}, count overshoots {result.overshoots}",
        f"  200 -> visible   {_spread(latencies, options.timeout)}"
        f" (timeouts rank above every visible sample)",
        f"  p50 by fifth     {_by_fifth(result)} ms (samples by send time: a growing backlog rises here)",
        f"  p99 by fifth     {_by_fifth(result, 0.99)} ms",
        f"  polls            {result.polls} ({poll_rate:.0f}/s; at most {result.most_outstanding} samples"
        f" watched at once); poll round trip {_spread(result.poll_rtts)};"
        f" problems {dict(result.poll_problems) or 0}",
        f"  CPU (one core=100%) {cpu}",
        f"  run-queue wait   {waited} ms per s, threads summed (runnable while the core ran another task)",
        f"  ingester accepted {accepted}",
        f"  load average     {result.load_before:.1f} before, {result.load_after:.1f} after"
        f" ({os.cpu_count()} CPUs; other processes share the cores)",
        *_warnings(result),
        f"p99 webhook-200 -> visible: {ms(p99, options.timeout)} ms (bar {BAR_MS:.0f} ms)",
    ]


# --------------------------------------------------------------------------- main


async def run_setup(
    target_context: contextlib.AbstractAsyncContextManager[Target], options: Options, placement: Placement
) -> tuple[str, Run]:
    """Starts one setup, measures it, stops it; returns its name and what it saw."""
    async with target_context as target:
        print(f"\n== {target.name}")
        if target.broker:
            print(f"kafka: {target.broker}")
        print(f"logs in {target.children[0].log_path.parent}", flush=True)
        try:
            return target.name, await measure(target, placement, options)
        except Exception:
            for child in target.children:
                print(f"--- last lines of {child.name} ({child.log_path}):\n{child.tail()}")
            raise


def _on_terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run_embedded(options: Options, placement: Placement, work: Path) -> tuple[str, Run]:
    return asyncio.run(run_setup(embedded_target(work, placement), options, placement))


def _run_kafka(options: Options, placement: Placement, work: Path, pin_broker: bool) -> tuple[str, Run]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        target = kafka_target(work, placement, configured, "KAFKA_BOOTSTRAP_SERVERS", None)
        return asyncio.run(run_setup(target, options, placement))
    kafka = LocalKafka(num_partitions=PARTITIONS)
    if pin_broker:
        with placement.on_server_core():  # the JVM is forked from here: it starts on the servers' core
            kafka.start()
    else:
        with placement.on_all_cores():
            kafka.start()
    try:
        if pin_broker and kafka.pid is not None:
            placement.pin_tree(kafka.pid)
        note = "local broker, stopped at the end"
        target = kafka_target(work, placement, kafka.bootstrap_servers, note, kafka.pid)
        return asyncio.run(run_setup(target, options, placement))
    finally:
        kafka.stop()


def _parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m bench.latency",
        description=doc.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the load")
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=10.0,
        help="the same load first, not counted: the JVM broker compiles its hot paths (10)",
    )
    parser.add_argument(
        "--setup", choices=["both", "embedded", "kafka"], default="both", help="what to measure"
    )
    parser.add_argument("--sample-every", type=int, default=10, help="watch every n-th event")
    parser.add_argument("--customers", type=int, default=1000, help="customers of the unwatched events")
    parser.add_argument(
        "--connections", type=int, default=64, help="connections for webhooks (and for polls)"
    )
    parser.add_argument("--poll-ms", type=float, default=5.0, help="poll interval of one watched sample")
    parser.add_argument(
        "--poll-budget",
        type=float,
        default=2000.0,
        help="GETs/s all watched samples together aim not to exceed",
    )
    parser.add_argument("--timeout-s", type=float, default=10.0, help="give a watched sample up after this")
    parser.add_argument(
        "--drain-s", type=float, default=30.0, help="after the schedule, wait this long for webhook answers"
    )
    parser.add_argument("--server-cpu", type=int, help="core of the servers; None: the first available")
    parser.add_argument("--bench-cpu", type=int, help="core of this bench; None: the next available")
    parser.add_argument("--no-pin", action="store_true", help="pin nothing")
    parser.add_argument(
        "--unpinned-broker",
        action="store_true",
        help="leave a local broker free to run on any core (default: on the servers' core)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data and logs of each setup")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Measures each setup in turn, prints each result and the bar lines; 1 when a setup failed."""
    args = _parser().parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0 or args.sample_every < 1 or args.poll_budget <= 0:
        raise SystemExit("--rate, --seconds, --sample-every and --poll-budget must be positive")
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_terminate)
    options = Options(
        rate=args.rate,
        seconds=args.seconds,
        sample_every=args.sample_every,
        customers=args.customers,
        connections=args.connections,
        poll_interval=args.poll_ms / 1000,
        poll_budget=args.poll_budget,
        timeout=args.timeout_s,
        drain=args.drain_s,
        warmup=args.warmup_s,
    )
    placement = choose_placement(args)
    print(
        f"bench.latency: webhook 200 -> visible in GET /customers/{{address}}; open loop {options.rate:g}"
        f" events/s for {options.seconds:g} s, every {options.sample_every}th watched (poll every"
        f" {args.poll_ms:g} ms, budget {options.poll_budget:g} GETs/s, timeout {options.timeout:g} s);"
        f" {placement.describe()}"
    )
    kinds = ["embedded", "kafka"] if args.setup == "both" else [args.setup]
    summary: list[str] = []
    failed = False
    try:
        for kind in kinds:
            work = Path(tempfile.mkdtemp(prefix=f"bench-latency-{kind}-"))
            try:
                if kind == "embedded":
                    name, result = _run_embedded(options, placement, work)
                else:
                    name, result = _run_kafka(options, placement, work, not args.unpinned_broker)
            except Exception as error:  # one setup failing still lets the other report
                failed = True
                print(f"{kind}: FAILED: {type(error).__name__}: {error}")
                summary.append(f"{kind}: failed ({type(error).__name__})")
                continue
            finally:
                if not args.keep:
                    shutil.rmtree(work, ignore_errors=True)
            lines = report(name, result)
            print("\n".join(lines), flush=True)
            summary.append(f"{kind:<9} {lines[-1]}")
    except KeyboardInterrupt:
        print("\ninterrupted: every child process group is stopped", file=sys.stderr)
        return 130
    finally:
        _kill_leftovers()
    print("\n== summary")
    print("\n".join(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
