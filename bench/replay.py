"""Replay throughput on the embedded log: the in-memory fold against a versioned replay.

The in-memory fold is `--verify`'s rebuild; the versioned replay writes every state to a new
version in state.db and switches to it.

    python -m bench.replay [--events 20000] [--customers 2000]

The log is filled with canonical events of real Brevo payloads (deliveries, opens, clicks spread
over the customers), straight through the SQLite adapter. Both runs fold the same log in the same
process; the ratio says what the durable version costs over the pure fold.
"""

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from eventlog.port import LogRecord, ReadStart
from eventlog.sqlite import SqliteEventLog
from schemas.brevo import canonicalize_all
from schemas.event import encode_event
from streams.embedded import StateDb
from tajo_events.replay import rebuild, replay_embedded
from tests.payloads import brevo_email

KINDS = ("delivered", "opened", "click", "delivered", "unique_opened")
BATCH = 500


async def fill(log: SqliteEventLog, events: int, customers: int) -> None:
    """Appends `events` canonical events spread over `customers` addresses."""
    received = datetime(2026, 1, 1, tzinfo=UTC)
    records: list[LogRecord] = []
    for n in range(events):
        raw = brevo_email(
            KINDS[n % len(KINDS)],
            email=f"customer{n % customers}@example.com",
            ts_epoch=1_700_000_000_000 + n,
            **{"message-id": f"bench-{n}"},
        )
        for event in canonicalize_all(raw, received):
            records.append(LogRecord(event.key.encode(), encode_event(event)))
        if len(records) >= BATCH:
            await log.append(records)
            records = []
    await log.append(records)


async def main(events: int, customers: int) -> None:
    """Fills a log, folds it both ways, prints both rates and their ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        log = SqliteEventLog(Path(tmp) / "log.db")
        await fill(log, events, customers)
        total = sum((await log.head()).values())

        started = time.perf_counter()
        model = await rebuild(log, ReadStart())
        in_memory = time.perf_counter() - started

        db = StateDb(Path(tmp) / "state.db")
        started = time.perf_counter()
        version = await replay_embedded(log, db, ReadStart())
        versioned = time.perf_counter() - started
        if len(list(db.states(version))) != len(model):
            raise SystemExit("the versioned replay and the in-memory fold disagree on the states")
        db.close()
        await log.stop()
    print(f"events in log:            {total} ({customers} customers, {len(model)} states)")
    print(f"in-memory fold (--verify): {total / in_memory:9.0f} events/s ({in_memory:.2f} s)")
    print(f"versioned replay + switch: {total / versioned:9.0f} events/s ({versioned:.2f} s)")
    print(f"ratio versioned / in-memory: {in_memory / versioned:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=2_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, arguments.customers))
