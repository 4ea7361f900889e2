"""The one-process pipeline on the embedded log: ingester, in-process fold and projections API together."""

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Protocol

from aiohttp import web
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from eventlog.sqlite import SqliteEventLog
from ingest.app import create_app as create_ingest_app
from ingest.config import IngestSettings
from projections.api import ApiSettings, Insight
from projections.api import create_app as create_projections_app
from projections.holder import ProjectionHolder
from projections.log_tail import LogTail, LogTailFeeder
from projections.overview import ActionCounts, FoldPosition, ServiceHealth
from projections.store import ReadModel
from streams.brevo_api import BrevoSettings, HttpBrevoApi
from streams.effector import Effector, Outcome
from streams.embedded import PARTITION, BurstGate, EmbeddedEffector, EmbeddedRunner, StateDb
from streams.fold_faults import fold_handlers
from telemetry.metrics import ObservabilitySettings, Telemetry
from webpage.routes import add_page

LOG_FILE = "log.db"
STATE_FILE = "state.db"


def create_embedded_app(data_dir: Path, api_token: str) -> web.Application:
    """Ingester at `/webhooks/brevo`, projections under `/api/`, the fold in between, the page at `/`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    event_log = SqliteEventLog(data_dir / LOG_FILE)
    state_db = StateDb(data_dir / STATE_FILE)
    holder = ProjectionHolder()

    async def serve_version(version: int, states: list[tuple[str, bytes]]) -> None:
        holder.swap(await asyncio.to_thread(ReadModel.of, states), version)

    runner = EmbeddedRunner(
        event_log, state_db, holder.apply, serve_version, handlers=fold_handlers(os.environ)
    )
    # One registry for the whole process at `/metrics`, read with the API token like the projections.
    observe = dataclasses.replace(
        ObservabilitySettings.from_env(os.environ), api_token=api_token, webhook_auth_reads_metrics=False
    )
    telemetry = Telemetry()
    app = create_ingest_app(
        IngestSettings.from_env(os.environ), event_log, observe=observe, telemetry=telemetry
    )
    effectors: list[Effector] = []
    brevo = BrevoSettings.from_env(os.environ)
    tail = LogTail()
    tail_feeder = LogTailFeeder(event_log, tail, BurstGate(event_log))
    status = EmbeddedStatus(event_log, runner, effectors, configured=brevo is not None)
    projections = create_projections_app(
        ApiSettings(api_token),
        holder,
        runner,
        observe=observe,
        telemetry=telemetry.under("/api"),
        metrics_route=False,
        insight=Insight(tail, tail_feeder, status),
    )
    app.add_subapp("/api/", projections)
    add_page(app, "/api")
    _fold_metrics(telemetry, event_log, runner)
    telemetry.collect(lambda: _effector_families(effectors))
    if brevo is not None:
        app.cleanup_ctx.append(_effector_context(data_dir / STATE_FILE, brevo, effectors))
    # aiohttp runs the ingester's clean-up (which stops the log) before the projections sub-app's
    # (which stops the runner): the runner is stopped first, at shutdown, so it never reads a closed log.
    app.on_shutdown.append(_stopper(runner))
    app.on_shutdown.append(_stopper(tail_feeder))
    app.on_cleanup.append(_closer(state_db))
    return app


class EmbeddedStatus:
    """The pipeline's status in this process: the log's head, the fold's position, the effector's counts."""

    def __init__(
        self,
        event_log: SqliteEventLog,
        runner: EmbeddedRunner,
        effectors: list[Effector],
        *,
        configured: bool,
    ) -> None:
        self._log = event_log
        self._runner = runner
        self._effectors = effectors
        self._configured = configured

    async def fold(self) -> list[FoldPosition]:
        head = await self._log.head()
        return [FoldPosition(PARTITION, head.get(PARTITION, 0), self._runner.position)]

    async def actions(self) -> ActionCounts:
        if not self._configured:
            return ActionCounts(None, None, "no BREVO_API_KEY: actions are queued, not carried out")
        done = sum(e.outcomes[Outcome.DONE] for e in self._effectors)
        dead = sum(e.outcomes[Outcome.GAVE_UP] for e in self._effectors)
        return ActionCounts(done, dead, "since this process started")

    async def services(self) -> list[ServiceHealth]:
        health = await self._log.health()
        position = self._runner.position
        return [
            ServiceHealth("ingester", "ok" if health.ok else "failing", health.detail),
            ServiceHealth(
                "fold",
                "unknown" if position is None else "ok",
                "starting" if position is None else f"folded up to offset {position}",
            ),
            ServiceHealth("projections", "ok", "answering"),
            ServiceHealth(
                "effector",
                "ok" if self._configured else "unknown",
                "running" if self._configured else "off (no BREVO_API_KEY)",
            ),
        ]


class _Stoppable(Protocol):
    async def stop(self) -> None: ...


def _stopper(runner: _Stoppable) -> Callable[[web.Application], Awaitable[None]]:
    async def stop(_: web.Application) -> None:
        await runner.stop()

    return stop


def _fold_metrics(telemetry: Telemetry, event_log: SqliteEventLog, runner: EmbeddedRunner) -> None:
    """The fold lag: the log's head (read before each scrape) minus the position the fold reached."""
    head: dict[int, int] = {}

    async def read_head() -> None:
        head.update(await event_log.head())

    def families() -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "tajo_fold_lag_records", "records in the log not folded yet, by partition", labels=["partition"]
        )
        if runner.position is not None and PARTITION in head:
            lag.add_metric([str(PARTITION)], max(0, head[PARTITION] - runner.position))
        yield lag
        yield CounterMetricFamily("tajo_fold_records", "log records folded since start", value=runner.folded)
        yield CounterMetricFamily(
            "tajo_events_dead_lettered",
            "events the fold set aside as dead letters (`tajo-events dlq list`), since start",
            value=runner.dead_lettered,
        )

    telemetry.before_scrape(read_head)
    telemetry.collect(families)


def _effector_families(effectors: list[Effector]) -> Iterator[Metric]:
    family = CounterMetricFamily(
        "tajo_effector_actions",
        "actions the effector handled, by outcome: done (carried out), gave_up (dead-lettered), "
        "skipped_duplicate, not_needed",
        labels=["outcome"],
    )
    for outcome in Outcome:
        family.add_metric([outcome.value], sum(effector.outcomes[outcome] for effector in effectors))
    yield family


def _effector_context(
    state_path: Path, brevo: BrevoSettings, effectors: list[Effector]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def run_effector(_: web.Application) -> AsyncIterator[None]:
        outbox = StateDb(state_path)  # a connection of its own
        async with HttpBrevoApi(brevo.base_url, brevo.api_key) as api:
            effector = Effector(api, brevo, outbox)
            effectors.append(effector)  # its counts stay in the metrics once it stops
            embedded = EmbeddedEffector(outbox, effector)
            await embedded.start()
            yield
            await embedded.stop()
        outbox.close()

    return run_effector


def _closer(state_db: StateDb) -> Callable[[web.Application], Awaitable[None]]:
    async def close(_: web.Application) -> None:
        state_db.close()

    return close
