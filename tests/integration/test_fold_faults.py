"""Fold processes killed and partitions moved under steady webhook load: nothing acknowledged is lost or
counted twice.

A background load posts signed 'delivered' webhooks (single events and small batched arrays, each with
a message id of its own) for 50 customers and keeps a ledger of what the ingester acknowledged with a
200. Meanwhile the fold is killed, or partitions move between workers, many times; each time the test
waits until the consumer group has rebalanced and its committed offsets move again. In the end every
customer's `delivered` count must equal its ledger exactly, and `tajo-events replay --verify` must find
the live state equal to a rebuild from the log.
"""

import asyncio
import contextlib
import itertools
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from eventlog.kafka_reader import KafkaLogReader
from ingest.auth import sign
from tests.integration.pipeline import PARTITIONS, SECRET, Pipeline
from tests.payloads import Raw, brevo_email
from tests.processes import ChildProcess, child_pids, command_line, eventually, run_command

pytestmark = pytest.mark.kafka

CUSTOMERS = [f"fault{n:02d}@example.com" for n in range(50)]
RATE = 120.0  # events per second the load aims at; the fold keeps up with several times that
BATCH_SIZES = (1, 1, 2, 1, 3, 1, 5, 8)  # single events and batched arrays, in turn
T0 = 1_767_225_600_000  # epoch ms of the first event
POST_TIMEOUT_S = 30.0
POST_ATTEMPTS = 20  # a 503 or a timeout is retried with the same body, as Brevo would


class Load:
    """Posts signed webhooks at a steady pace in the background; counts what the ingester acknowledged.

    A body the ingester did not answer with 200 (a 503, a timeout) is sent again as it was, as Brevo
    retries, and counted once when a 200 comes: its events have the same ids, so the log may hold them
    twice but the fold must count them once. Bounded by `max_seconds` and `max_events`.
    """

    def __init__(self, pipeline: Pipeline, *, max_seconds: float, max_events: int) -> None:
        self.pipeline = pipeline
        self.max_seconds = max_seconds
        self.max_events = max_events
        self.acknowledged: Counter[str] = Counter()
        self.posts = 0
        self.retries = 0
        self.seconds = 0.0
        self._sequence = 0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def events(self) -> int:
        """Events the ingester acknowledged so far."""
        return self.acknowledged.total()

    def start(self) -> "Load":
        self._task = asyncio.create_task(self._run())
        return self

    def check(self) -> None:
        """Raises what stopped the load, if it failed."""
        if self._task is not None and self._task.done() and not self._task.cancelled():
            error = self._task.exception()
            if error is not None:
                raise error

    async def stop(self) -> None:
        """Stops posting after the body in flight has its answer; raises what stopped it if it failed."""
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def close(self) -> None:
        """Stops posting, whatever happened (a failure was raised by `stop` or `check` already)."""
        with contextlib.suppress(Exception):
            await self.stop()

    def summary(self) -> str:
        rate = self.events / self.seconds if self.seconds else 0.0
        return (
            f"load: {self.events} events acknowledged in {self.posts} posts over {self.seconds:.0f}s "
            f"({rate:.0f} events/s), {self.retries} retried"
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        started = due = loop.time()
        try:
            for size in itertools.cycle(BATCH_SIZES):
                if self._stopping.is_set() or self.events >= self.max_events:
                    return
                if loop.time() - started >= self.max_seconds:
                    return
                events = [self._next_event() for _ in range(size)]
                await self._deliver(events[0] if size == 1 else events, [str(e["email"]) for e in events])
                # Pace to RATE without bursting to catch up after a slow answer; a stop ends the pause.
                due = max(due + size / RATE, loop.time() - 1.0)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, due - loop.time())):
                        await self._stopping.wait()
        finally:
            self.seconds = loop.time() - started

    def _next_event(self) -> Raw:
        n = self._sequence
        self._sequence += 1
        address = CUSTOMERS[(n * 17) % len(CUSTOMERS)]
        message_id = f"<load-{n}@tajo.test>"
        return brevo_email("delivered", email=address, ts_epoch=T0 + n, **{"message-id": message_id})

    async def _deliver(self, body: object, addresses: list[str]) -> None:
        data = orjson.dumps(body)
        headers = {"Content-Type": "application/json", "X-Brevo-Signature": sign(SECRET, data)}
        answer = ""
        for attempt in range(POST_ATTEMPTS):
            if attempt:
                self.retries += 1
                await asyncio.sleep(0.5)  # a retry's back-off, not a wait for a condition
            try:
                async with asyncio.timeout(POST_TIMEOUT_S):
                    response = await self.pipeline.ingest.post("/webhooks/brevo", data=data, headers=headers)
                    status, answer = response.status, await response.text()
            except (aiohttp.ClientError, TimeoutError) as error:
                status, answer = 0, repr(error)
            self.posts += 1
            if status == 200:
                ids = orjson.loads(answer)["event_ids"]
                assert len(set(ids)) == len(addresses), f"ids {ids} for {len(addresses)} distinct events"
                self.acknowledged.update(addresses)
                return
            if status not in (0, 503):
                raise AssertionError(f"the ingester refused a load body with {status}: {answer}")
        raise AssertionError(f"no 200 for a load body after {POST_ATTEMPTS} attempts; last: {answer}")


@dataclass(frozen=True, repr=False)
class Group:
    """What the fold's consumer group looks like at one moment."""

    state: str = ""
    members: dict[str, frozenset[int]] = field(default_factory=dict)  # id -> events partitions
    committed: dict[int, int] = field(default_factory=dict)
    head: dict[int, int] = field(default_factory=dict)
    error: str = ""

    def settled(self, members: int, unlike: Iterable[str] = ()) -> bool:
        """Stable with `members` members, not the membership `unlike`, every events partition owned."""
        owned = frozenset[int]().union(*self.members.values())
        return (
            not self.error
            and self.state == "Stable"
            and len(self.members) == members
            and set(self.members) != set(unlike)
            and owned == frozenset(range(PARTITIONS))
        )

    def progressed_since(self, before: "Group") -> bool:
        """Every partition's committed offset moved past `before`'s, or has caught up with the head."""
        return not self.error and all(
            self.committed.get(p, 0) > before.committed.get(p, 0) or self.committed.get(p, 0) >= end
            for p, end in self.head.items()
        )

    def __repr__(self) -> str:
        if self.error:
            return f"Group(error={self.error})"
        owners = {member[-8:]: sorted(parts) for member, parts in self.members.items()}
        lag = {p: end - self.committed.get(p, 0) for p, end in sorted(self.head.items())}
        return f"Group({self.state}, members={owners}, committed={self.committed}, lag={lag})"


async def observe(pipeline: Pipeline, load: Load) -> Group:
    """The fold's group (generation 0): membership, assignment, committed offsets and the topic's head."""
    load.check()
    admin = AIOKafkaAdminClient(bootstrap_servers=pipeline.bootstrap)
    try:
        async with asyncio.timeout(20):
            await admin.start()
            [described] = await admin.describe_consumer_groups([pipeline.app_id])
            offsets = await admin.list_consumer_group_offsets(pipeline.app_id)
            head = await KafkaLogReader(pipeline.bootstrap, pipeline.topic).head()
    except Exception as error:  # the group may not exist yet, the broker may be slow: not yet
        return Group(error=repr(error))
    finally:
        await admin.close()
    [(_code, _group, state, _kind, _protocol, members)] = described.groups
    return Group(
        state=state,
        members={member: _events_partitions(pipeline, assignment) for member, *_, assignment in members},
        committed={
            tp.partition: meta.offset
            for tp, meta in offsets.items()
            if tp.topic == pipeline.topic and meta.offset >= 0
        },
        head=head,
    )


def _events_partitions(pipeline: Pipeline, assignment: bytes) -> frozenset[int]:
    if not assignment:
        return frozenset()
    decoded: Any = ConsumerProtocolMemberAssignment.decode(assignment)
    return frozenset(p for topic, parts in decoded.assignment if topic == pipeline.topic for p in parts)


async def rebalanced_and_moving(pipeline: Pipeline, load: Load, before: Group, members: int) -> str:
    """Waits until the group settled with `members` members other than `before`'s, then until every
    partition's committed offset moves past where it was once settled. Returns how long each took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    settled = await eventually(
        lambda: observe(pipeline, load), lambda g: g.settled(members, before.members), within=180
    )
    settled_at = loop.time()
    await eventually(lambda: observe(pipeline, load), lambda g: g.progressed_since(settled), within=180)
    return f"settled in {settled_at - started:.1f}s, committing again {loop.time() - settled_at:.1f}s later"


async def delivered_counts(pipeline: Pipeline) -> dict[str, int]:
    """Each customer's `delivered` count in the projections API (0 when unknown)."""
    views = await asyncio.gather(*(pipeline.customer(address) for address in CUSTOMERS))
    return {
        address: view["channels"]["email"]["counts"]["delivered"] if status == 200 else 0
        for address, (status, view) in zip(CUSTOMERS, views, strict=True)
    }


def differences(shown: dict[str, int], acknowledged: Counter[str]) -> dict[str, tuple[int, int]]:
    """Customers whose view differs from their ledger: address -> (shown, acknowledged)."""
    return {a: (shown[a], acknowledged[a]) for a in CUSTOMERS if shown[a] != acknowledged[a]}


def describe(differing: dict[str, tuple[int, int]], load: Load) -> str:
    lost = sum(max(0, acked - shown) for shown, acked in differing.values())
    doubled = sum(max(0, shown - acked) for shown, acked in differing.values())
    lines = [
        f"{len(differing)} of {len(CUSTOMERS)} customers' delivered counts differ from what the ingester "
        f"acknowledged: {lost} acknowledged events missing, {doubled} counted twice "
        f"(of {load.events} acknowledged)"
    ]
    for address, (shown, acked) in sorted(differing.items()):
        verdict = f"{acked - shown} missing" if shown < acked else f"{shown - acked} counted twice"
        lines.append(f"  {address}: view {shown}, acknowledged {acked} ({verdict})")
    return "\n".join(lines)


async def nothing_lost_or_doubled(pipeline: Pipeline, load: Load, log: list[str]) -> None:
    """Stops the load; once the group committed everything, compares each view with the ledger and
    runs `tajo-events replay --verify`. Fails listing every difference."""
    await load.stop()
    log.append(load.summary())
    await eventually(pipeline.lag, lambda lag: lag == 0, within=300)

    async def differing() -> dict[str, tuple[int, int]]:
        return differences(await delivered_counts(pipeline), load.acknowledged)

    # The changelog round trip: wait for every view to show its ledger, or for one to overshoot it.
    try:
        found = await eventually(
            differing, lambda d: not d or any(shown > acked for shown, acked in d.values()), within=90
        )
    except AssertionError:  # some views stay short of their ledger: listed below
        found = await differing()
    code, out, err = await run_command(["replay", "--verify"], pipeline.command_env, within=300)
    print("\n".join(log))  # the timeline (pytest shows it with a failure, or with -s)
    problems = [describe(found, load)] if found else []
    if code != 0:
        problems.append(f"tajo-events replay --verify exited {code}:\n{out[-4000:]}{_errors(err)}")
    assert not problems, "\n\n".join([*problems, "\n".join(log)])


def _errors(stderr: str) -> str:
    """A command's stderr without its INFO logging and progress lines."""
    kept = [line for line in stderr.splitlines() if " INFO " not in line and not line.startswith("replay: ")]
    return "\n".join(kept)[-2000:]


def fold_child(supervisor: ChildProcess) -> int | None:
    """The pid of the supervisor's live `worker --role fold` child, if it has one."""
    assert supervisor.process is not None
    for pid in child_pids(supervisor.process.pid):
        args = command_line(pid)
        if "--role" in args and args[args.index("--role") + 1 : args.index("--role") + 2] == ["fold"]:
            return pid
    return None


async def _now(value: int | None) -> int | None:
    return value


def _another_than(pid: int) -> Callable[[int | None], bool]:
    return lambda found: found is not None and found != pid


@pytest.mark.timeout(600)
async def test_fold_killed_five_times_under_load_loses_and_doubles_nothing(pipeline: Pipeline) -> None:
    supervisor = pipeline.start_worker()
    load = Load(pipeline, max_seconds=420, max_events=int(RATE * 420)).start()
    log: list[str] = []
    try:
        log.append(f"first fold: {await rebalanced_and_moving(pipeline, load, Group(), 1)}")
        for kill in range(1, 6):
            pid = await eventually(lambda: _now(fold_child(supervisor)), lambda p: p is not None, within=60)
            assert pid is not None
            before = await observe(pipeline, load)
            os.kill(pid, signal.SIGKILL)
            await eventually(lambda: _now(fold_child(supervisor)), _another_than(pid), within=60)
            timing = await rebalanced_and_moving(pipeline, load, before, 1)
            log.append(f"kill {kill} of fold {pid} at {load.events} events: {timing}")
        await nothing_lost_or_doubled(pipeline, load, log)
    finally:
        await load.close()


# Partition moves, always leaving at least one worker: 2 -> 1 -> 2 -> 3 -> 2 -> 1 -> 2 -> 1 -> 2 -> ...
MOVES = ("kill", "start", "start", "term", "kill", "start", "term", "start", "kill", "start", "term", "start")


@pytest.mark.timeout(900)
async def test_partitions_moved_ten_times_lose_and_double_nothing(pipeline: Pipeline) -> None:
    workers = [pipeline.start_worker(), pipeline.start_worker()]
    load = Load(pipeline, max_seconds=660, max_events=int(RATE * 660)).start()
    log: list[str] = []
    try:
        log.append(f"two workers: {await rebalanced_and_moving(pipeline, load, Group(), 2)}")
        for number, move in enumerate(MOVES, start=1):
            before = await observe(pipeline, load)
            if move == "start":
                workers.append(pipeline.start_worker())
            elif move == "term":  # a clean stop: SIGTERM to the supervisor and its fold
                await asyncio.to_thread(workers.pop(0).stop)
            else:  # kill -9 of the supervisor's whole process group
                await asyncio.to_thread(workers.pop(0).kill)
            assert 1 <= len(workers) <= 3
            timing = await rebalanced_and_moving(pipeline, load, before, len(workers))
            log.append(f"move {number} ({move}, {len(workers)} left) at {load.events} events: {timing}")
        await nothing_lost_or_doubled(pipeline, load, log)
    finally:
        await load.close()
