"""The Faust apps: the fold (agents decode, fold and store; actions go to their own topic) and the effector.

The fold runs under its generation's app id (see `streams.generations`); the effector under an app
id of its own, so that a replay's switch of generations does not reset what it has carried out.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from streams.actions import decode_action, encode_action
from streams.apply import apply_record
from streams.brevo_api import BrevoSettings, HttpBrevoApi
from streams.effector import Effector, Outcome
from streams.generations import ENGAGEMENT_TABLE, changelog_topic, effects_app_id, fold_app_id

EFFECTS_TABLE = "effects"
__all__ = ["ENGAGEMENT_TABLE", "TableDoneLog", "WorkerSettings", "create_effects_app", "create_faust_app"]


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Where the worker reads events, where it publishes actions, and where it keeps local data."""

    bootstrap_servers: str
    events_topic: str = "tajo.events"
    actions_topic: str = "tajo.actions"
    partitions: int = 4
    replication_factor: int = 1
    app_id: str = "tajo-events"
    data_dir: Path = Path(".tajo-data/worker")
    session_timeout_s: float = 30.0
    generation: int = 0

    @property
    def changelog_topic(self) -> str:
        """The topic Faust writes the engagement table's changes to."""
        return changelog_topic(self.app_id, self.generation)


class TableDoneLog:
    """The effector's record of carried-out actions, in a changelogged Faust table (survives restarts)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def __contains__(self, action_id: str, /) -> bool:
        return action_id.encode() in self._table

    def add(self, action_id: str, /) -> None:
        self._table[action_id.encode()] = b"done"


def _app(settings: WorkerSettings, app_id: str) -> faust.App:
    return faust.App(
        app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        datadir=str(settings.data_dir),
        web_enabled=False,  # projections read the changelog; workers serve nothing over HTTP
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,  # tables recover from their changelog; standbys only add rebalance work
        producer_acks=-1,
        autodiscover=False,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(0.5, settings.session_timeout_s / 10),
    )


def create_faust_app(settings: WorkerSettings) -> tuple[faust.App, Any]:
    """The fold's Faust app, under the app id of its generation. Returns the app and the actions topic."""
    app = _app(settings, fold_app_id(settings.app_id, settings.generation))
    events = app.topic(
        settings.events_topic, key_type=bytes, value_type=bytes, partitions=settings.partitions
    )
    actions = app.topic(
        settings.actions_topic, key_type=bytes, value_type=bytes, partitions=settings.partitions
    )
    table = app.Table(ENGAGEMENT_TABLE, partitions=settings.partitions, key_type=bytes, value_type=bytes)

    def lookup(key: str) -> bytes | None:
        stored: bytes | None = table.get(key.encode())
        return stored

    @app.agent(events)
    async def fold_events(stream: Any) -> None:
        async for value in stream:
            applied = apply_record(lookup, value)
            for action in applied.actions:  # published before the state: a re-read re-publishes, never loses
                await actions.send(key=action.address.encode(), value=encode_action(action))
            if applied.state is not None:
                table[applied.key.encode()] = applied.state

    return app, actions


def create_effects_app(settings: WorkerSettings, brevo: BrevoSettings) -> faust.App:
    """The effector's Faust app: carries out actions that need Brevo, at most once per action id."""
    app = _app(settings, effects_app_id(settings.app_id))
    actions = app.topic(
        settings.actions_topic, key_type=bytes, value_type=bytes, partitions=settings.partitions
    )
    done = app.Table(EFFECTS_TABLE, partitions=settings.partitions, key_type=bytes, value_type=bytes)
    dead = app.topic(f"{settings.actions_topic}.dead", key_type=bytes, value_type=bytes, partitions=1)

    @app.agent(actions)
    async def carry_out(stream: Any) -> None:
        async with HttpBrevoApi(brevo.base_url, brevo.api_key) as api:
            effector = Effector(api, brevo, TableDoneLog(done))
            async for value in stream:
                if await effector.handle(decode_action(value)) is Outcome.GAVE_UP:
                    await dead.send(value=value)

    return app
