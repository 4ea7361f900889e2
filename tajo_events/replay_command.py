"""The `tajo-events replay` command: rebuild the projections from the log, or `--verify` them against it."""

import argparse
import asyncio
import os
from datetime import UTC, datetime

from eventlog.port import ReadStart
from eventlog.sqlite import PARTITION
from replay.core import Progress
from replay.embedded import run_embedded
from replay.kafka import KafkaReplaySettings, replay_kafka, verify_kafka
from schemas.event import epoch_ms
from streams.fold_faults import fold_handlers
from tajo_events.embedded import LOG_FILE, STATE_FILE
from tajo_events.errors import ConfigError
from tajo_events.gc_tuning import tune_for_folding
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
    handlers = fold_handlers(os.environ)  # the fold's own, unless a fault drill is set
    if args.verify and (start.offsets is not None or start.at_ms is not None):
        raise ConfigError(
            "--verify compares a rebuild from the start of the log: drop --from-offset/--from-time"
        )
    if pipeline.bootstrap_servers is None:
        if not (pipeline.data_dir / LOG_FILE).exists():
            raise ConfigError(f"no embedded log in {pipeline.data_dir.resolve()} (set TAJO_DATA_DIR)")
        log_path, state_path = pipeline.data_dir / LOG_FILE, pipeline.data_dir / STATE_FILE
        return asyncio.run(
            run_embedded(log_path, state_path, start, verify_only=args.verify, handlers=handlers)
        )
    kafka = KafkaReplaySettings(
        bootstrap_servers=pipeline.bootstrap_servers,
        app_id=pipeline.app_id,
        events_topic=pipeline.events_topic,
        actions_topic=pipeline.actions_topic,
        partitions=pipeline.partitions,
        replication_factor=pipeline.replication_factor,
        handlers=handlers,
    )
    if args.verify:
        return asyncio.run(verify_kafka(kafka, args.settle_s))
    if start.offsets is not None:
        raise ConfigError("on Kafka, replay from the start or --from-time (offsets differ per partition)")
    asyncio.run(replay_kafka(kafka, start, Progress(total=0)))
    return 0
