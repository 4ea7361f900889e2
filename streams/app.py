"""The Faust app: one agent decodes each event, folds it into the customer's state and stores it."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from schemas.event import decode_event
from streams.fold import fold, initial_state
from streams.state import decode_state, encode_state

ENGAGEMENT_TABLE = "engagement"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Where the worker reads events, how it names its table, and where it keeps local data."""

    bootstrap_servers: str
    events_topic: str = "tajo.events"
    partitions: int = 4
    replication_factor: int = 1
    app_id: str = "tajo-events"
    data_dir: Path = Path(".tajo-data/worker")
    session_timeout_s: float = 30.0

    @property
    def changelog_topic(self) -> str:
        """The topic Faust writes the engagement table's changes to."""
        return f"{self.app_id}-{ENGAGEMENT_TABLE}-changelog"


def fold_record(table: Any, value: bytes) -> None:
    """Decodes one log record, folds it into its customer's state, and stores the state if it changed."""
    event = decode_event(value)
    key = event.key.encode()
    stored: bytes | None = table.get(key)
    state = decode_state(stored) if stored is not None else initial_state(event.key)
    folded = fold(state, event)
    if folded is not state:
        table[key] = encode_state(folded)


def create_faust_app(settings: WorkerSettings) -> faust.App:
    """The Faust app with the events topic, the engagement table and the folding agent."""
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        datadir=str(settings.data_dir),
        web_enabled=False,  # projections read the changelog; workers serve nothing over HTTP
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        autodiscover=False,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(0.5, settings.session_timeout_s / 10),
    )
    events = app.topic(
        settings.events_topic, key_type=bytes, value_type=bytes, partitions=settings.partitions
    )
    table = app.Table(ENGAGEMENT_TABLE, partitions=settings.partitions, key_type=bytes, value_type=bytes)

    @app.agent(events)
    async def fold_events(stream: Any) -> None:
        async for value in stream:
            fold_record(table, value)

    return app
