"""The `tajo-events` command: run the ingester, the Faust worker, the projections API, or all of them."""

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from eventlog.dead_letters import RETRIED_CONFIG, dead_topic, retried_topic
from eventlog.generations import effects_app_id, fold_app_id
from eventlog.kafka import KafkaEventLog, KafkaLogSettings, ensure_events_topic, ensure_topics
from eventlog.kafka_positions import KafkaPositions
from ingest.app import create_app as create_ingest_app
from ingest.config import IngestConfigError, IngestSettings
from projections.api import ApiSettings, Insight
from projections.api import create_app as create_projections_app
from projections.generational import GenerationalFeeder
from projections.holder import ProjectionHolder
from projections.kafka_status import KafkaStatus
from projections.log_tail import KafkaLogTailFeeder, LogTail
from projections.pipeline_watch import PipelineTopics, PipelineWatch
from tajo_events.errors import ConfigError
from tajo_events.gc_tuning import tune_for_folding
from tajo_events.logging_setup import configure_logging, worker_logging_config
from tajo_events.serving import run_app
from tajo_events.settings import PipelineSettings
from telemetry.metrics import Telemetry, TelemetryConfigError
from webpage.routes import add_page

if TYPE_CHECKING:
    from streams.app import WorkerSettings
    from tajo_events.first_run import LocalSecrets

log = logging.getLogger("tajo_events")


def _worker_settings(pipeline: PipelineSettings, generation: int = 0) -> "WorkerSettings":
    from streams.app import WorkerSettings  # Faust is imported only by the commands that run it

    return WorkerSettings(
        bootstrap_servers=pipeline.require_kafka(),
        events_topic=pipeline.events_topic,
        actions_topic=pipeline.actions_topic,
        partitions=pipeline.partitions,
        replication_factor=pipeline.replication_factor,
        app_id=pipeline.app_id,
        data_dir=pipeline.data_dir / f"worker-{os.getpid()}",
        session_timeout_s=pipeline.session_timeout_s,
        stall_timeout_s=pipeline.stall_timeout_s,
        rebalance_timeout_s=pipeline.rebalance_timeout_s,
        generation=generation,
    )


async def _prepare_topics(pipeline: PipelineSettings) -> None:
    bootstrap, replicas = pipeline.require_kafka(), pipeline.replication_factor
    if not pipeline.create_topics:  # made by hand: the ingester checks the events topic on each write
        return
    await ensure_events_topic(bootstrap, pipeline.events_topic, pipeline.partitions, replicas)
    # The dead letters of the fold and of the effector (`tajo-events dlq`), one partition each: the
    # project's brokers create no topic on first use, and a send to a missing topic waits for it,
    # holding the fold or the effector up at its first dead letter.
    topics = {
        pipeline.actions_topic: pipeline.partitions,
        dead_topic(pipeline.events_topic): 1,
        dead_topic(pipeline.actions_topic): 1,
    }
    await ensure_topics(bootstrap, topics, replicas)
    notes = {retried_topic(pipeline.events_topic): 1, retried_topic(pipeline.actions_topic): 1}
    await ensure_topics(bootstrap, notes, replicas, RETRIED_CONFIG)  # where `dlq retry` notes its retries


def _ingest_app(pipeline: PipelineSettings) -> web.Application:
    settings = IngestSettings.from_env(os.environ)
    event_log = KafkaEventLog(
        KafkaLogSettings(
            pipeline.require_kafka(),
            pipeline.events_topic,
            pipeline.append_timeout_s,
            partitions=pipeline.partitions,
        )
    )
    return create_ingest_app(settings, event_log)


def projections_app(pipeline: PipelineSettings, *, page: bool = True) -> web.Application:
    """The projections API on Kafka, the fold's and the effector's progress in its `/metrics` and overview.

    The page is at its root unless `page` is False (`serve` has it at its own).
    """
    holder = ProjectionHolder()
    bootstrap = pipeline.require_kafka()
    feeder = GenerationalFeeder(bootstrap, pipeline.app_id, pipeline.events_topic, holder)
    telemetry = Telemetry()
    # the fold and the effector run in the worker: their progress is read from the broker at each scrape
    topics = PipelineTopics(
        events=pipeline.events_topic,
        actions=pipeline.actions_topic,
        actions_dead=dead_topic(pipeline.actions_topic),
        events_dead=dead_topic(pipeline.events_topic),
        fold_group=lambda: fold_app_id(pipeline.app_id, holder.current.version),
        effects_group=effects_app_id(pipeline.app_id),
    )
    watch = PipelineWatch(KafkaPositions(bootstrap), topics)
    tail = LogTail()
    insight = Insight(
        tail, KafkaLogTailFeeder(bootstrap, pipeline.events_topic, tail), KafkaStatus(watch, holder)
    )
    app = create_projections_app(
        ApiSettings(pipeline.require_api_token()), holder, feeder, telemetry=telemetry, insight=insight
    )
    telemetry.before_scrape(watch.refresh)
    telemetry.collect(watch.families)

    async def close_watch(_: web.Application) -> None:
        await watch.close()

    app.on_cleanup.append(close_watch)
    if page:
        add_page(app, "")
    return app


def run_ingest(pipeline: PipelineSettings, host: str, port: int) -> int:
    """Runs the webhook ingester until interrupted."""
    app = _ingest_app(pipeline)
    asyncio.run(_prepare_topics(pipeline))
    run_app(app, host, port, _announce("ingester"))
    return 0


def run_projections(pipeline: PipelineSettings, host: str, port: int) -> int:
    """Runs the projections API until interrupted."""
    run_app(projections_app(pipeline), host, port, _announce("projections API"))
    return 0


def run_worker(pipeline: PipelineSettings, role: str = "supervisor", generation: int = 0) -> int:
    """Runs the worker supervisor, or one of its children: the fold of a generation, or the effector.

    The supervisor runs the live generation's fold and, when BREVO_API_KEY is set, the effector.
    """
    from streams.brevo_api import BrevoSettings

    brevo = BrevoSettings.from_env(os.environ)
    asyncio.run(_prepare_topics(pipeline))
    if role == "supervisor":
        from eventlog.generations import GenerationControl
        from tajo_events.supervisor import supervise

        control = GenerationControl(pipeline.require_kafka(), pipeline.app_id, pipeline.replication_factor)
        return asyncio.run(supervise(control, effects=brevo is not None))
    from streams.app import create_effects_app, create_faust_app
    from streams.stall import watch_transitions
    from streams.stop_deadline import DeadlineWorker

    settings = _worker_settings(pipeline, generation)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if role == "fold":
        app, _ = create_faust_app(settings)
        tune_for_folding()
    elif brevo is not None:
        app = create_effects_app(settings, brevo)
    else:
        raise ConfigError("the effector needs BREVO_API_KEY")
    watch_transitions(app, settings.stall_timeout_s)  # a rebalance or recovery that hangs ends the process
    DeadlineWorker(
        app, loglevel="INFO", quiet=True, logging_config=worker_logging_config()
    ).execute_from_commandline()
    return 0


def run_serve(pipeline: PipelineSettings, host: str, port: int) -> int:
    """Runs the whole pipeline: on the embedded log in this process, or on Kafka with a Faust worker.

    With no KAFKA_BOOTSTRAP_SERVERS everything runs here on the embedded log in TAJO_DATA_DIR.
    """
    if pipeline.bootstrap_servers is None:
        from tajo_events.embedded import create_embedded_app
        from tajo_events.first_run import needs_local_secrets, use_local_secrets

        local = use_local_secrets(pipeline.data_dir, os.environ) if needs_local_secrets(os.environ) else None
        if local is not None:
            pipeline = dataclasses.replace(pipeline, api_token=os.environ["TAJO_API_TOKEN"])
        app = create_embedded_app(pipeline.data_dir, pipeline.require_api_token())
        tune_for_folding()  # this process folds the log too
        where = f"embedded log in {pipeline.data_dir.resolve()}"
        run_app(app, host, port, _welcome(host, port, where, local))
        return 0
    asyncio.run(_prepare_topics(pipeline))
    app = _ingest_app(pipeline)
    app.add_subapp("/api/", projections_app(pipeline, page=False))
    add_page(app, "/api")
    worker = subprocess.Popen([sys.executable, "-m", "tajo_events.cli", "worker"])
    try:
        run_app(app, host, port, _welcome(host, port, f"Kafka at {pipeline.bootstrap_servers}", None))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    return 0


def _welcome(host: str, port: int, where: str, local: "LocalSecrets | None") -> Callable[..., None]:
    from tajo_events.first_run import try_it

    base = f"http://{host}:{port}"

    def printer(_: object) -> None:
        lines = [
            f"tajo-events listening on {base} ({where})",
            f"  webhooks:    POST {base}/webhooks/brevo",
            f"  projections: GET  {base}/api/customers/<email or phone>  (Authorization: Bearer)",
        ]
        if local is not None:
            made = "made its secrets" if local.made else "uses the secrets"
            lines.append(f"  first run:   {made} in {local.path} (owner-only): {', '.join(local.taken)}")
        lines.append("  try it:")
        lines += [f"    {line}" for line in try_it(base, os.environ, local).splitlines()]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    return printer


def _announce(what: str) -> Callable[..., None]:
    def printer(message: object) -> None:
        log.info("%s: %s", what, message)

    return printer


def build_parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per service."""
    parser = argparse.ArgumentParser(prog="tajo-events", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, default_port, help_text in [
        ("ingest", 8080, "run the webhook ingester (POST /webhooks/brevo)"),
        ("projections", 8081, "run the projections API (GET /customers/{address})"),
        ("serve", 8080, "run ingester, Faust worker and projections API (under /api/) together"),
    ]:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=int(os.environ.get("TAJO_PORT", default_port)))
    worker = commands.add_parser(
        "worker", help="run the Faust workers: the live generation's fold, the effector"
    )
    worker.add_argument(
        "--role", choices=["supervisor", "fold", "effects"], default="supervisor", help=argparse.SUPPRESS
    )
    worker.add_argument("--generation", type=int, default=0, help=argparse.SUPPRESS)
    from tajo_events.replay_command import add_arguments

    add_arguments(
        commands.add_parser("replay", help="rebuild the projections from the log (or --verify them)")
    )
    from tajo_events.webhooks_admin import add_signature_arguments, add_webhooks_arguments

    add_webhooks_arguments(
        commands.add_parser("webhooks", help="register or audit this receiver's webhooks in Brevo")
    )
    add_signature_arguments(
        commands.add_parser("signature", help="show a body's X-Brevo-Signature, check a received one")
    )
    from tajo_events.dlq_command import add_arguments as add_dlq_arguments

    add_dlq_arguments(
        commands.add_parser("dlq", help="list, show and retry dead-lettered events and actions")
    )
    kafka = commands.add_parser("kafka", help="run a local single-node Kafka broker from Maven Central jars")
    kafka.add_argument("--port", type=int, default=9092)
    kafka_dir = kafka.add_mutually_exclusive_group()
    kafka_dir.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the broker's folder, kept across crashes and restarts (default $TAJO_DATA_DIR/kafka)",
    )
    kafka_dir.add_argument(
        "--temporary", action="store_true", help="an empty broker in a temporary folder, removed on exit"
    )
    return parser


def _run(args: argparse.Namespace, pipeline: PipelineSettings) -> int:
    commands: dict[str, Callable[[], int]] = {
        "ingest": lambda: run_ingest(pipeline, args.host, args.port),
        "projections": lambda: run_projections(pipeline, args.host, args.port),
        "worker": lambda: run_worker(pipeline, args.role, args.generation),
        "serve": lambda: run_serve(pipeline, args.host, args.port),
        "replay": lambda: _replay(pipeline, args),
        "kafka": lambda: _kafka(args.port, args.data_dir or pipeline.data_dir / "kafka", args.temporary),
        "webhooks": lambda: _webhooks(args),
        "signature": lambda: _signature(args),
        "dlq": lambda: _dlq(pipeline, args),
    }
    return commands[args.command]()


def _replay(pipeline: PipelineSettings, args: argparse.Namespace) -> int:
    from tajo_events.replay_command import run_replay

    return run_replay(pipeline, args)


def _dlq(pipeline: PipelineSettings, args: argparse.Namespace) -> int:
    from tajo_events.dlq_command import run_dlq

    return run_dlq(pipeline, args)


def _webhooks(args: argparse.Namespace) -> int:
    from tajo_events.webhooks_admin import run_webhooks

    return run_webhooks(args, os.environ)


def _signature(args: argparse.Namespace) -> int:
    from tajo_events.webhooks_admin import run_signature

    return run_signature(args, os.environ)


def _kafka(port: int, data_dir: Path, temporary: bool) -> int:
    from tajo_events.kafka_local import main as kafka_main

    where = ["--temporary"] if temporary else ["--data-dir", str(data_dir)]
    return kafka_main(["--port", str(port), *where])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tajo-events` command."""
    args = build_parser().parse_args(argv)
    try:
        configure_logging(os.environ)  # JSON lines (TAJO_LOG_FORMAT), redacted, at TAJO_LOG_LEVEL
        return _run(args, PipelineSettings.from_env(os.environ))
    except (ConfigError, IngestConfigError, TelemetryConfigError) as error:  # the settings, all services
        sys.stderr.write(f"tajo-events: {error}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
