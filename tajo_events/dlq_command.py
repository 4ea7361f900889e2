"""The `tajo-events dlq` command: list, show and retry dead-lettered events and actions.

On the embedded log (`TAJO_DATA_DIR`) or on Kafka (`KAFKA_BOOTSTRAP_SERVERS`), as the other commands.
"""

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Protocol, TextIO

import orjson
from aiokafka.errors import KafkaError

from eventlog.dead_letters import DeadEntry
from eventlog.port import LogUnavailable
from tajo_events.embedded import LOG_FILE, STATE_FILE
from tajo_events.errors import ConfigError
from tajo_events.settings import PipelineSettings


class DeadLetters(Protocol):
    """Where the dead letters are kept: the embedded state file or the Kafka dead-letter topics."""

    async def entries(self) -> list[DeadEntry]: ...

    async def entry(self, entry_id: str) -> DeadEntry | None: ...

    async def retry(self, entry: DeadEntry) -> bool: ...


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`list`, `show ID` and `retry ID...`."""
    actions = parser.add_subparsers(dest="dlq_action", required=True)
    listing = actions.add_parser("list", help="every dead letter: id, kind, time, status, error")
    listing.add_argument("--pending", action="store_true", help="only those not retried yet")
    show = actions.add_parser("show", help="one dead letter in full, as JSON")
    show.add_argument("id", help="its id, as `dlq list` shows it (event:<n> or action:<n>)")
    retry = actions.add_parser("retry", help="re-submit dead letters (after a fix); each once")
    retry.add_argument("ids", nargs="*", help="their ids")
    retry.add_argument("--all", action="store_true", help="every dead letter not retried yet")


def run_dlq(pipeline: PipelineSettings, args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Runs the command; 0 when done, 1 when an id is unknown, 2 when the log cannot be reached."""
    try:
        return asyncio.run(_run(pipeline, args, out))
    except (KafkaError, LogUnavailable, TimeoutError) as error:
        sys.stderr.write(f"tajo-events dlq: the log cannot be reached: {error!r}\n")
        return 2


async def _run(pipeline: PipelineSettings, args: argparse.Namespace, out: TextIO) -> int:
    if pipeline.bootstrap_servers is not None:
        from tajo_events.dlq_kafka import KafkaDeadLetters

        kafka = KafkaDeadLetters(
            pipeline.bootstrap_servers,
            pipeline.events_topic,
            pipeline.actions_topic,
            pipeline.replication_factor,
            pipeline.create_topics,
        )
        return await _act(kafka, args, out)
    if not (pipeline.data_dir / LOG_FILE).exists():
        raise ConfigError(f"no embedded log in {pipeline.data_dir.resolve()} (set TAJO_DATA_DIR)")
    from tajo_events.dlq_embedded import EmbeddedDeadLetters

    embedded = EmbeddedDeadLetters(pipeline.data_dir / LOG_FILE, pipeline.data_dir / STATE_FILE)
    try:
        return await _act(embedded, args, out)
    finally:
        embedded.close()


async def _act(store: DeadLetters, args: argparse.Namespace, out: TextIO) -> int:
    if args.dlq_action == "list":
        entries = [e for e in await store.entries() if not (args.pending and e.retried_at_ms is not None)]
        for entry in entries:
            out.write(_line(entry) + "\n")
        out.write(f"{len(entries)} dead letter(s)\n")
        return 0
    if args.dlq_action == "show":
        found = await store.entry(args.id)
        if found is None:
            out.write(f"dlq: no dead letter {args.id}\n")
            return 1
        out.write(orjson.dumps(found.document(), option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    return await _retry(store, args, out)


async def _retry(store: DeadLetters, args: argparse.Namespace, out: TextIO) -> int:
    if args.all == bool(args.ids):
        raise ConfigError("dlq retry: name the ids to retry, or --all (not both)")
    entries = {entry.id: entry for entry in await store.entries()}
    wanted = [i for i, e in entries.items() if e.retried_at_ms is None] if args.all else args.ids
    status = 0
    for entry_id in wanted:
        entry = entries.get(entry_id)
        if entry is None:
            out.write(f"{entry_id}: no such dead letter\n")
            status = 1
        elif await store.retry(entry):
            where = "the log" if entry.kind == "event" else "the actions"
            out.write(f"{entry_id}: re-submitted to {where}\n")
        else:
            out.write(f"{entry_id}: retried already at {_time(entry.retried_at_ms)}; nothing done\n")
    return status


def _line(entry: DeadEntry) -> str:
    status = "dead" if entry.retried_at_ms is None else "retried"
    return f"{entry.id}\t{entry.kind}\t{_time(entry.at_ms)}\t{status}\t{entry.summary}"


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
