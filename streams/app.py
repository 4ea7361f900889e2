"""The Faust apps: the fold (agents decode, fold and store; actions go to their own topic) and the effector.

The fold runs under its generation's app id (see `eventlog.generations`); the effector under an app
id of its own, so that a replay's switch of generations does not reset what it has carried out.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from faust.types import TP

from domain.actions import decode_action
from eventlog.dead_letters import dead_topic, headers_of
from eventlog.generations import (
    ENGAGEMENT_TABLE,
    SEEN_TABLE,
    changelog_topic,
    effects_app_id,
    fold_app_id,
    seen_changelog_topic,
)
from eventlog.kafka_writer import PartitionWriter
from eventlog.sqlite import wall_clock_ms
from streams.brevo_api import BrevoSettings, HttpBrevoApi
from streams.effector import Effector, Outcome
from streams.faust_batches import batch_topic, use_batching_transport
from streams.fold_faults import fold_handlers
from streams.stall import watch_for_stalls
from streams.table_fold import TableFold

EFFECTS_TABLE = "effects"
COMMIT_EVERY = 5_000
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
    stall_timeout_s: float = 60.0
    rebalance_timeout_s: float = 60.0  # how long the broker waits for members to rejoin in a rebalance

    @property
    def changelog_topic(self) -> str:
        """The topic Faust writes the engagement table's changes to."""
        return changelog_topic(self.app_id, self.generation)


class DurableTable:
    """A Faust table whose changelog writes are sent by the agent itself, awaited into the producer.

    `table[key] = value` queues the changelog write in Faust's send-soon buffer, and around a
    rebalance or a stop Faust committed offsets whose changelog writes never reached the broker
    (seen here: states missing from the changelog while their events were committed, so a
    hand-over folded the next event on a stale state). Here the store is set directly and the
    agent sends the changelog records itself and waits for the broker's acknowledgement before
    it takes the next event, so no offset is committed ahead of its state.
    """

    def __init__(self, table: Any) -> None:
        self._table = table
        self._pending: list[tuple[bytes, bytes]] = []

    def get(self, key: bytes) -> bytes | None:
        """The stored value of a key."""
        value: bytes | None = self._table.get(key)
        return value

    def __contains__(self, key: bytes, /) -> bool:
        return key in self._table

    def set(self, key: bytes, value: bytes) -> None:
        """Stores a value now; its changelog record goes out with the next `send_changelog`."""
        self._table.data[key] = value
        self._pending.append((key, value))

    async def send_changelog(self, partition: int) -> None:
        """Sends the pending changelog records to the partition of the event being processed."""
        pending, self._pending = self._pending, []
        for key, value in pending:
            sent = await self._table.changelog_topic.send(
                key=key, value=value, partition=partition, key_serializer="raw", value_serializer="raw"
            )
            await sent  # acknowledged before the event is: its offset may be committed any time after


class TableDoneLog:
    """The effector's record of carried-out actions, in a changelogged Faust table (survives restarts)."""

    def __init__(self, table: DurableTable) -> None:
        self._table = table

    def __contains__(self, action_id: str, /) -> bool:
        return action_id.encode() in self._table

    def add(self, action_id: str, /) -> None:
        self._table.set(action_id.encode(), b"done")


def _app(settings: WorkerSettings, app_id: str, **options: Any) -> faust.App:
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
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_heartbeat_interval=max(0.5, settings.session_timeout_s / 10),
        **options,
    )


def create_faust_app(settings: WorkerSettings) -> tuple[faust.App, Any]:
    """The fold's Faust app, under the app id of its generation. Returns the app and the actions topic."""
    app_id = fold_app_id(settings.app_id, settings.generation)
    # A fetch brings up to 4 MB per partition (Faust's default is 1 MB, some 2,000 events): under a
    # backlog a batch then holds more of each key's events, and each key is written once per batch.
    # Offsets are committed once COMMIT_EVERY events were acknowledged: after every batch under a
    # backlog, every few seconds (Faust's commit interval) under light traffic, where a commit per
    # small batch would only add work for the broker.
    app = _app(settings, app_id, broker_commit_every=COMMIT_EVERY, consumer_max_fetch_size=4 * 1024**2)
    use_batching_transport(app)
    events = app.topic(
        settings.events_topic, key_type=bytes, value_type=bytes, partitions=settings.partitions
    )
    actions = app.topic(
        settings.actions_topic, key_type=bytes, value_type=bytes, partitions=settings.partitions
    )
    engagement = app.Table(ENGAGEMENT_TABLE, partitions=settings.partitions, key_type=bytes, value_type=bytes)
    seen = app.Table(SEEN_TABLE, partitions=settings.partitions, key_type=bytes, value_type=bytes)
    writer = PartitionWriter(settings.bootstrap_servers)

    async def seek(partition: int, offset: int) -> None:
        await app.consumer.seek(TP(settings.events_topic, partition), offset)  # the fetch position

    fold = TableFold(
        states=engagement.data,
        seen=seen.data,
        states_changelog=changelog_topic(settings.app_id, settings.generation),
        seen_changelog=seen_changelog_topic(settings.app_id, settings.generation),
        actions_topic=settings.actions_topic,
        writer=writer,
        seek=seek,
        events_topic=settings.events_topic,
        handlers=fold_handlers(os.environ),
    )

    def forget_positions(_sender: Any, /, *_args: Any, signal: Any, **_kwargs: Any) -> None:  # noqa: ARG001
        fold.forget_positions()  # partitions moved: the recovered tables are the truth again

    app.on_partitions_revoked.connect(forget_positions)
    app.on_partitions_assigned.connect(forget_positions)

    batch_topic(app, events, fold.fold)  # each fetch's records in one batch (streams.faust_batches)

    watch_for_stalls(app, settings.bootstrap_servers, settings.events_topic, app_id, settings.stall_timeout_s)
    return app, actions


def create_effects_app(settings: WorkerSettings, brevo: BrevoSettings) -> faust.App:
    """The effector's Faust app: carries out actions that need Brevo, at most once per action id."""
    app = _app(settings, effects_app_id(settings.app_id))
    actions = app.topic(
        settings.actions_topic, key_type=bytes, value_type=bytes, partitions=settings.partitions
    )
    done = DurableTable(
        app.Table(EFFECTS_TABLE, partitions=settings.partitions, key_type=bytes, value_type=bytes)
    )
    dead = app.topic(dead_topic(settings.actions_topic), key_type=bytes, value_type=bytes, partitions=1)

    @app.agent(actions)
    async def carry_out(stream: Any) -> None:
        async with HttpBrevoApi(brevo.base_url, brevo.api_key) as api:
            effector = Effector(api, brevo, TableDoneLog(done))
            async for event in stream.events():
                action = decode_action(event.value)
                if await effector.handle(action) is Outcome.GAVE_UP:
                    error_type, _, error = effector.gave_up.pop(action.action_id, "").partition(": ")
                    headers = headers_of(
                        "action",
                        error_type=error_type or "unknown",
                        error=error,
                        source_topic=settings.actions_topic,
                        source_partition=event.message.partition,
                        source_offset=event.message.offset,
                        at_ms=wall_clock_ms(),
                    )
                    sent = await dead.send(key=action.action_id.encode(), value=event.value, headers=headers)
                    await sent  # acknowledged before the action's offset may be committed
                await done.send_changelog(event.message.partition)

    return app
