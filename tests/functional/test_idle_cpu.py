"""An idle `tajo-events serve` sleeps: the embedded log's wait blocks instead of returning at once.

The wait is `SqliteEventLog.wait_beyond`: an append of this process wakes it at once, one of another
process is seen by a poll of the file, and with neither it raises TimeoutError when its time is up.
"""

import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import ClientError, ClientSession, ClientTimeout

from eventlog.port import LogRecord
from eventlog.sqlite import SqliteEventLog
from ingest.auth import sign
from tests.payloads import brevo_email
from tests.processes import ChildProcess, eventually, free_port

SECRET = b"idle-secret"
TOKEN = "idle-api-token"
IDLE_WINDOW_S = 3.0
MAX_SHARE_OF_A_CORE = 0.02

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc/<pid>/stat")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    utime, stime = int(fields[11]), int(fields[12])  # the 14th and 15th fields of the whole line
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


async def append_one(log: SqliteEventLog, value: bytes) -> None:
    await log.append([LogRecord(b"k", value)])


async def still_waiting(waiter: "asyncio.Task[None]", window_s: float = 0.2) -> bool:
    """True when the task has not finished within the window (it is blocked, not spinning to an end)."""
    done, _ = await asyncio.wait({waiter}, timeout=window_s)
    return not done


# --- the wait itself, on the log directly ------------------------------------------------------------


async def test_wait_beyond_returns_at_once_when_a_record_after_the_offset_exists(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db", poll_interval_s=3600)
    await log.start()
    try:
        await log.append([LogRecord(b"k", b"0"), LogRecord(b"k", b"1")])
        async with asyncio.timeout(60):  # a guard: neither wait needs the poll or the timeout
            await log.wait_beyond(-1, timeout_s=3600)
            await log.wait_beyond(0, timeout_s=3600)
    finally:
        await log.stop()


async def test_wait_beyond_raises_timeout_when_nothing_comes_after_the_offset(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db", poll_interval_s=0.05)
    await log.start()
    try:
        await append_one(log, b"0")  # offset 0 exists, so only a record at 1 or later ends the wait
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await log.wait_beyond(0, timeout_s=0.3)
        assert loop.time() - started >= 0.3
        with pytest.raises(TimeoutError):
            await log.wait_beyond(5, timeout_s=0)  # no time at all: one look, then the error
    finally:
        await log.stop()


async def test_wait_beyond_is_woken_by_an_append_of_this_process(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db", poll_interval_s=3600)  # the poll alone would take an hour
    await log.start()
    try:
        await append_one(log, b"0")
        waiter = asyncio.create_task(log.wait_beyond(0, timeout_s=3600))
        assert await still_waiting(waiter)
        await append_one(log, b"1")
        async with asyncio.timeout(60):  # a guard: only the append's wake-up ends the wait before the hour
            await waiter
        assert waiter.result() is None
    finally:
        await log.stop()


async def test_wait_beyond_sees_an_append_of_another_instance_within_the_poll(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    tailer, writer = SqliteEventLog(path, poll_interval_s=0.05), SqliteEventLog(path)
    await tailer.start()
    await writer.start()
    try:
        waiter = asyncio.create_task(tailer.wait_beyond(-1, timeout_s=3600))
        assert await still_waiting(waiter)
        await append_one(writer, b"0")  # the writer's commit does not wake the tailer: only its poll does
        async with asyncio.timeout(60):  # a guard: the poll sees the record long before
            await waiter
        assert waiter.result() is None
    finally:
        await tailer.stop()
        await writer.stop()


async def test_waiting_for_nothing_costs_next_to_no_cpu(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db")  # the default poll, as `serve` has it
    await log.start()
    try:
        await log.head()  # opened, so the window below holds only the wait
        before = time.process_time()
        with pytest.raises(TimeoutError):
            await log.wait_beyond(-1, timeout_s=1.0)
        assert time.process_time() - before < 1.0 * 0.05  # about 0.7% measured; a spinning wait takes all
    finally:
        await log.stop()


# --- the whole `serve` process --------------------------------------------------------------------------


class Serve:
    """`tajo-events serve` on the embedded log in a fresh data directory, and a client for it."""

    def __init__(self, tmp_path: Path, session: ClientSession) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.session = session
        env = {
            "TAJO_DATA_DIR": str(tmp_path / "data"),
            "BREVO_WEBHOOK_SECRET": SECRET.decode(),
            "TAJO_API_TOKEN": TOKEN,
            "KAFKA_BOOTSTRAP_SERVERS": "",  # the embedded log, whatever the test run has configured
            "BREVO_API_KEY": "",  # no effector
        }
        self.child = ChildProcess(["serve", "--port", str(self.port)], env, tmp_path / "serve.log")

    @property
    def pid(self) -> int:
        assert self.child.process is not None
        return self.child.process.pid

    async def healthy(self) -> bool:
        assert self.child.process is not None
        if self.child.process.poll() is not None:
            raise AssertionError(f"serve exited:\n{self.child.output()}")
        try:
            async with self.session.get(
                f"{self.base}/webhooks/brevo/health", headers={"X-Brevo-Signature": sign(SECRET, b"")}
            ) as response:
                return response.status == 200
        except ClientError:
            return False

    async def post(self, payload: object) -> int:
        body = orjson.dumps(payload)
        headers = {"Content-Type": "application/json", "X-Brevo-Signature": sign(SECRET, body)}
        async with self.session.post(f"{self.base}/webhooks/brevo", data=body, headers=headers) as response:
            return response.status

    async def delivered(self, address: str) -> int | None:
        """The customer's delivered count, or None while the projections do not know the customer."""
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with self.session.get(f"{self.base}/api/customers/{address}", headers=headers) as response:
            if response.status == 404:
                return None
            assert response.status == 200, await response.text()
            view = await response.json()
        count: int = view["channels"]["email"]["counts"]["delivered"]
        return count


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    async with ClientSession(timeout=ClientTimeout(total=30)) as session:
        running = Serve(tmp_path, session)
        running.child.start()
        try:
            await eventually(running.healthy, bool, within=60)
            yield running
        finally:
            running.child.stop()


@linux_only
async def test_idle_serve_uses_under_two_percent_of_a_core(serve: Serve) -> None:
    before, started = cpu_seconds(serve.pid), time.monotonic()
    await asyncio.sleep(IDLE_WINDOW_S)  # the sampling window itself, not a wait for anything
    used, elapsed = cpu_seconds(serve.pid) - before, time.monotonic() - started
    share = used / elapsed
    assert share < MAX_SHARE_OF_A_CORE, f"idle serve used {share:.1%} of a core over {elapsed:.1f}s"


async def test_serve_folds_a_new_record_within_milliseconds_of_its_append(serve: Serve) -> None:
    delays = []
    for n in range(5):
        address = f"latency-{n}@example.com"
        assert await serve.post(brevo_email("delivered", email=address)) == 200  # 200: appended
        acknowledged = time.monotonic()
        async with asyncio.timeout(60):
            while await serve.delivered(address) != 1:  # asks again at once: the delay is what is measured
                pass
        delays.append(time.monotonic() - acknowledged)
    # Each delay includes one projections request; the runner's own fallback would be a second.
    assert statistics.median(delays) < 0.1, [f"{delay * 1000:.1f} ms" for delay in delays]
