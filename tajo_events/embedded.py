"""The one-process pipeline on the embedded log: ingester, in-process fold and projections API together."""

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from eventlog.sqlite import SqliteEventLog
from ingest.app import create_app as create_ingest_app
from ingest.config import IngestSettings
from projections.api import ApiSettings
from projections.api import create_app as create_projections_app
from projections.holder import ProjectionHolder
from projections.store import ReadModel
from streams.brevo_api import BrevoSettings, HttpBrevoApi
from streams.effector import Effector
from streams.embedded import EmbeddedEffector, EmbeddedRunner, StateDb

LOG_FILE = "log.db"
STATE_FILE = "state.db"


def create_embedded_app(data_dir: Path, api_token: str) -> web.Application:
    """Ingester at `/webhooks/brevo`, projections under `/api/`, the fold running in between."""
    data_dir.mkdir(parents=True, exist_ok=True)
    event_log = SqliteEventLog(data_dir / LOG_FILE)
    state_db = StateDb(data_dir / STATE_FILE)
    holder = ProjectionHolder()

    async def serve_version(version: int, states: list[tuple[str, bytes]]) -> None:
        holder.swap(await asyncio.to_thread(ReadModel.of, states), version)

    runner = EmbeddedRunner(event_log, state_db, holder.apply, serve_version)
    app = create_ingest_app(IngestSettings.from_env(os.environ), event_log)
    app.add_subapp("/api/", create_projections_app(ApiSettings(api_token), holder, runner))
    brevo = BrevoSettings.from_env(os.environ)
    if brevo is not None:
        app.cleanup_ctx.append(_effector_context(data_dir / STATE_FILE, brevo))
    # aiohttp runs the ingester's clean-up (which stops the log) before the projections sub-app's
    # (which stops the runner): the runner is stopped first, at shutdown, so it never reads a closed log.
    app.on_shutdown.append(_stopper(runner))
    app.on_cleanup.append(_closer(state_db))
    return app


def _stopper(runner: EmbeddedRunner) -> Callable[[web.Application], Awaitable[None]]:
    async def stop(_: web.Application) -> None:
        await runner.stop()

    return stop


def _effector_context(
    state_path: Path, brevo: BrevoSettings
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def run_effector(_: web.Application) -> AsyncIterator[None]:
        outbox = StateDb(state_path)  # a connection of its own
        async with HttpBrevoApi(brevo.base_url, brevo.api_key) as api:
            effector = EmbeddedEffector(outbox, Effector(api, brevo, outbox))
            await effector.start()
            yield
            await effector.stop()
        outbox.close()

    return run_effector


def _closer(state_db: StateDb) -> Callable[[web.Application], Awaitable[None]]:
    async def close(_: web.Application) -> None:
        state_db.close()

    return close
