"""`tajo-events serve` killed right after the 200s of group-committed appends loses none of them.

The server is the real command with one change: its SqliteEventLog prints the most appends one commit
has held (`append_stats().largest_group`) whenever that grows, before the request's 200 is sent. So
the test knows that the acknowledged requests included some that shared a commit.
"""

import re
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from eventlog.port import ReadStart
from eventlog.sqlite import SqliteEventLog
from tajo_events.embedded import LOG_FILE
from tests.webhook_crash import Server, assert_log_holds, post_until_killed, webhook_env

ACKS_BEFORE_KILL = 400

# `tajo-events serve`, its embedded log made to report its largest group commit as it grows.
OBSERVED_SERVE = """
import sys
from eventlog.sqlite import SqliteEventLog
from tajo_events import cli, embedded

class ObservedLog(SqliteEventLog):
    largest = 0

    async def append(self, records):
        await super().append(records)
        largest = self.append_stats().largest_group
        if largest > self.largest:
            self.largest = largest
            print(f"largest group commit: {largest} appends", flush=True)

embedded.SqliteEventLog = ObservedLog
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    env = webhook_env() | {"TAJO_API_TOKEN": "crash-api-token", "TAJO_DATA_DIR": str(tmp_path / "data")}
    running = Server(["-c", OBSERVED_SERVE, "serve"], env, tmp_path / "serve.log", "listening on")
    try:
        yield await running.start()
    finally:
        running.stop()


async def logged_event_ids(path: Path) -> list[str]:
    log = SqliteEventLog(path)
    await log.start()
    try:
        return [orjson.loads(record.value)["event_id"] async for record in log.read(ReadStart())]
    finally:
        await log.stop()


async def test_sigkill_right_after_200s_of_group_commits_loses_no_acknowledged_event(
    server: Server, tmp_path: Path
) -> None:
    load = await post_until_killed(server.url, server.kill, ACKS_BEFORE_KILL)
    server.stop()
    assert server.process is not None
    assert server.process.returncode == -9
    assert load.in_flight_at_kill > 0  # the crash cut requests short

    groups = [int(n) for n in re.findall(r"largest group commit: (\d+) appends", server.text())]
    assert max(groups, default=0) > 1, "no commit held more than one request"

    logged = await logged_event_ids(tmp_path / "data" / LOG_FILE)
    assert_log_holds(load, logged, whole_requests=True)
