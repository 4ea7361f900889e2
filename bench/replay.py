"""Replay throughput on the embedded log: the in-memory fold against a versioned replay.

The in-memory fold is `--verify`'s rebuild; the versioned replay writes every state to a new
version in state.db and switches to it.

    python -m bench.replay [--events 20000] [--customers 2000] [--rounds 5]

The log is filled with canonical events of real Brevo payloads, straight through the SQLite adapter:
every customer gets a mix of its own (mostly deliveries and opens, then clicks, unique and proxy
opens, a few bounces, unsubscribes and spam reports), from transactional emails (tags) and marketing
campaigns (`camp_id`), some clicks on the rewards page, and a few Brevo retries (duplicates). The mix
is drawn from a fixed seed, so every run folds the same log. Both runs fold the same log in the same
process; the ratio says what the durable version costs over the pure fold.
"""

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from pydantic import JsonValue

from eventlog.port import LogRecord, ReadStart
from eventlog.sqlite import SqliteEventLog
from replay.core import rebuild
from replay.embedded import replay_embedded
from samples.brevo import brevo_email
from schemas.brevo import canonicalize_all
from schemas.event import encode_event
from streams.embedded import StateDb
from tajo_events.gc_tuning import tune_for_folding

# Brevo event names and how often each comes, per 1000 events.
MIX = {
    "delivered": 380,
    "opened": 200,
    "unique_opened": 120,
    "proxy_open": 40,
    "click": 160,
    "request": 40,
    "soft_bounce": 25,
    "hard_bounce": 8,
    "unsubscribed": 20,
    "spam": 2,
    "error": 5,
}
TAGS: tuple[list[str], ...] = (["welcome"], ["order", "receipt"], ["loyalty-points"], ["newsletter"], [])
CAMPAIGNS = (("101", "Spring sale"), ("102", "Loyalty club"), ("103", "Autumn"))
# A click on the rewards page (one in four here) is a visit: the fold asks for an action.
LINKS = (
    "https://shop.example/p/42",
    "https://shop.example/p/7",
    "https://shop.example/cart",
    "https://shop.example/rewards",
)
RETRY = 0.01  # share of events Brevo sends again (same content: a duplicate in the log)
SEED = 20260101
BATCH = 500


def raw_event(rng: random.Random, n: int, customers: int) -> dict[str, JsonValue]:
    """The n-th Brevo event: its customer's next event, of a kind drawn from the mix."""
    kind = rng.choices(list(MIX), weights=list(MIX.values()))[0]
    extra: dict[str, JsonValue] = {"message-id": f"bench-{n}"}
    if rng.random() < 0.4:  # a marketing campaign: camp_id and its name, no tags
        camp_id, name = rng.choice(CAMPAIGNS)
        extra |= {"camp_id": camp_id, "campaign name": name, "tags": [], "tag": ""}
    else:  # a transactional email: its tags, as an array and as a JSON-encoded string
        tags: list[JsonValue] = list(rng.choice(TAGS))
        extra |= {"tags": tags, "tag": orjson.dumps(tags).decode()}
    if kind == "click":
        extra["link"] = rng.choice(LINKS)
    elif kind in ("soft_bounce", "hard_bounce"):
        extra["reason"] = "mailbox full" if kind == "soft_bounce" else "unknown user"
    return brevo_email(
        kind,
        email=f"customer{n % customers}@example.com",
        ts_epoch=1_700_000_000_000 + n * 1000,
        **extra,
    )


async def fill(log: SqliteEventLog, events: int, customers: int) -> None:
    """Appends `events` canonical events spread over `customers` addresses."""
    received = datetime(2026, 1, 1, tzinfo=UTC)
    rng = random.Random(SEED)  # noqa: S311 - a repeatable mix, not a secret
    records: list[LogRecord] = []
    sent: list[dict[str, JsonValue]] = []
    for n in range(events):
        raw = rng.choice(sent[-200:]) if sent and rng.random() < RETRY else raw_event(rng, n, customers)
        sent.append(raw)
        for event in canonicalize_all(raw, received):
            records.append(LogRecord(event.key.encode(), encode_event(event)))
        if len(records) >= BATCH:
            await log.append(records)
            records = []
    await log.append(records)


def pin_to_one_cpu() -> str:
    """Pins this process to the last CPU it may use; says where it runs.

    The fold is single-threaded, but reads run on the log's database thread: unpinned, the two
    threads hand the interpreter lock across cores, and here the same fold then ran 30% slower and
    varied twice as much (52,000 against 77,000 events/s, medians of 10 rounds).
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return f"cpu {cpus[0]} (the only one)"
    os.sched_setaffinity(0, {cpus[-1]})
    return f"pinned to cpu {cpus[-1]} of {len(cpus)}"


async def main(events: int, customers: int, rounds: int) -> None:
    """Fills a log, folds it both ways `rounds` times in turn, prints the median rates and their ratio.

    The two folds alternate, so a slow spell of the machine falls on both; the medians leave out
    the odd round that a neighbour on the host slowed down.
    """
    placement = pin_to_one_cpu()
    with tempfile.TemporaryDirectory() as tmp:
        log = SqliteEventLog(Path(tmp) / "log.db")
        await fill(log, events, customers)
        total = sum((await log.head()).values())
        tune_for_folding()  # as `tajo-events replay` does
        in_memory: list[float] = []
        versioned: list[float] = []
        for round_ in range(rounds):
            started = time.perf_counter()
            model = await rebuild(log, ReadStart())
            in_memory.append(time.perf_counter() - started)

            db = StateDb(Path(tmp) / f"state-{round_}.db")
            started = time.perf_counter()
            version = await replay_embedded(log, db, ReadStart())
            versioned.append(time.perf_counter() - started)
            if len(list(db.states(version))) != len(model):
                raise SystemExit("the versioned replay and the in-memory fold disagree on the states")
            db.close()
        await log.stop()
    memory_s, versioned_s = statistics.median(in_memory), statistics.median(versioned)
    print(f"events in log:            {total} ({customers} customers, {len(model)} states)")
    print(f"median of {rounds} rounds each, alternating; {placement}:")
    memory_rate, versioned_rate = total / memory_s, total / versioned_s
    memory_spread, spread = _spread(total, in_memory), _spread(total, versioned)
    print(f"in-memory fold (--verify): {memory_rate:9.0f} events/s ({memory_s:.2f} s; {memory_spread})")
    print(f"versioned replay + switch: {versioned_rate:9.0f} events/s ({versioned_s:.2f} s; {spread})")
    print(f"ratio versioned / in-memory: {memory_s / versioned_s:.2f}")


def _spread(total: int, seconds: list[float]) -> str:
    return f"rounds from {total / max(seconds):.0f} to {total / min(seconds):.0f} events/s"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, arguments.customers, arguments.rounds))
