"""The `tajo-events replay` command: rebuild the projections from the log, or `--verify` them against it."""

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from eventlog.generations import GenerationControl, changelog_topic
from eventlog.kafka_reader import KafkaLogReader
from eventlog.port import ReadStart
from eventlog.sqlite import SqliteEventLog
from ingest.config import ConfigError
from projections.store import ReadModel
from schemas.event import epoch_ms
from streams.embedded import StateDb
from tajo_events.embedded import LOG_FILE, STATE_FILE
from tajo_events.gc_tuning import tune_for_folding
from tajo_events.replay import PARTITION, Progress, rebuild, replay_embedded, verify
from tajo_events.settings import PipelineSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The replay options."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--from-offset", type=int, help="replay from this log offset (embedded log)")
    where.add_argument(
        "--from-time", help="replay from the first event logged at or after this ISO-8601 time"
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="rebuild from the start and compare with the live state; exit 1 if they differ",
    )
    parser.add_argument(
        "--settle-s",
        type=float,
        default=30.0,
        help="Kafka --verify: how long to wait for the workers to catch up",
    )


def start_of(args: argparse.Namespace) -> ReadStart:
    """Where the replay begins."""
    if args.from_offset is not None:
        if args.from_offset < 0:
            raise ConfigError("--from-offset must be 0 or more")
        return ReadStart(offsets={PARTITION: args.from_offset})
    if args.from_time is not None:
        try:
            moment = datetime.fromisoformat(args.from_time)
        except ValueError:
            raise ConfigError("--from-time must be an ISO-8601 time, like 2024-05-01T12:00:00Z") from None
        return ReadStart(at_ms=epoch_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC)))
    return ReadStart()


def run_replay(pipeline: PipelineSettings, args: argparse.Namespace) -> int:
    """Runs the command; 0 when done (or equal), 1 when `--verify` found differences."""
    start = start_of(args)
    tune_for_folding()
    if args.verify and (start.offsets is not None or start.at_ms is not None):
        raise ConfigError(
            "--verify compares a rebuild from the start of the log: drop --from-offset/--from-time"
        )
    if pipeline.bootstrap_servers is None:
        if not (pipeline.data_dir / LOG_FILE).exists():
            raise ConfigError(f"no embedded log in {pipeline.data_dir.resolve()} (set TAJO_DATA_DIR)")
        return asyncio.run(_embedded(pipeline.data_dir, start, verify_only=args.verify))
    if args.verify:
        return asyncio.run(_kafka_verify(pipeline, args.settle_s))
    if start.offsets is not None:
        raise ConfigError("on Kafka, replay from the start or --from-time (offsets differ per partition)")
    from tajo_events.replay_kafka import replay_kafka

    asyncio.run(replay_kafka(pipeline, start, Progress(total=0)))
    return 0


async def _embedded(data_dir: Path, start: ReadStart, *, verify_only: bool) -> int:
    log = SqliteEventLog(data_dir / LOG_FILE)
    db = StateDb(data_dir / STATE_FILE)
    try:
        progress = Progress(total=0)
        if verify_only:
            from tajo_events.replay import verify_embedded

            verdict = await verify_embedded(log, db, progress)
            verdict.report(sys.stdout)
            return 0 if verdict.equal else 1
        version = await replay_embedded(log, db, start, progress)
        sys.stdout.write(f"replay: state version {version} is live; the old one was dropped\n")
        return 0
    finally:
        db.close()
        await log.stop()


async def _kafka_verify(pipeline: PipelineSettings, settle_s: float) -> int:
    bootstrap = pipeline.require_kafka()
    events = KafkaLogReader(bootstrap, pipeline.events_topic)
    live = await GenerationControl(bootstrap, pipeline.app_id, pipeline.replication_factor).live()
    changelog = KafkaLogReader(bootstrap, changelog_topic(pipeline.app_id, live))
    progress = Progress(total=sum((await events.head()).values()))
    rebuilt = await rebuild(events, ReadStart(), progress)
    deadline = asyncio.get_running_loop().time() + settle_s
    while True:
        verdict = verify(await _table(changelog), rebuilt)
        if verdict.equal or asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(1.0)  # the workers may still be folding the last events
    verdict.report(sys.stdout)
    return 0 if verdict.equal else 1


async def _table(changelog: KafkaLogReader) -> ReadModel:
    latest: dict[str, bytes] = {}
    async for record in changelog.read(ReadStart()):
        latest[record.key.decode()] = record.value
    return ReadModel.of(sorted(latest.items()))
