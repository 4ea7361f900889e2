"""The pipeline's status as the projections service sees it on Kafka: the fold's offsets, dead letters."""

from eventlog.generations import fold_app_id
from eventlog.kafka import topic_partitions
from eventlog.kafka_reader import KafkaLogReader, committed_offsets
from projections.holder import ProjectionHolder
from projections.overview import ActionCounts, FoldPosition, ServiceHealth


class KafkaStatus:
    """A `PipelineStatus` read from the broker: each call is a few admin round trips (the page polls it)."""

    def __init__(
        self,
        bootstrap_servers: str,
        base: str,
        events_topic: str,
        actions_topic: str,
        holder: ProjectionHolder,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._base = base
        self._events_topic = events_topic
        self._dead_topic = f"{actions_topic}.dead"
        self._holder = holder
        self._broker: ServiceHealth = ServiceHealth("broker", "unknown", "not asked yet")

    async def fold(self) -> list[FoldPosition]:
        """The live generation's committed offsets against the events topic's head."""
        try:
            head = await KafkaLogReader(self._bootstrap_servers, self._events_topic).head()
            group = fold_app_id(self._base, self._holder.current.version)
            done = await committed_offsets(self._bootstrap_servers, group, self._events_topic)
        except Exception as error:  # LogUnavailable, or aiokafka's admin errors (no common base)
            self._broker = ServiceHealth("broker", "failing", f"{self._bootstrap_servers}: {error!r}")
            return []
        self._broker = ServiceHealth("broker", "ok", f"{self._bootstrap_servers} answers")
        return [FoldPosition(p, end, done.get(p)) for p, end in sorted(head.items())]

    async def actions(self) -> ActionCounts:
        """Dead letters counted in `<actions>.dead`; the actions carried out are counted by the workers."""
        detail = f"carried out: counted by the workers' effector; dead letters: {self._dead_topic}"
        try:
            if not await topic_partitions(self._bootstrap_servers, self._dead_topic):
                return ActionCounts(None, 0, detail)
            head = await KafkaLogReader(self._bootstrap_servers, self._dead_topic).head()
        except Exception:  # the broker's health says why
            return ActionCounts(None, None, detail)
        return ActionCounts(None, sum(head.values()), detail)

    async def services(self) -> list[ServiceHealth]:
        """The projections service, the broker (as the last `fold` found it) and the fold."""
        fold = await self.fold()
        if not fold:
            fold_health = ServiceHealth("fold", "unknown", "no position known")
        elif any(p.folded is None for p in fold):
            fold_health = ServiceHealth("fold", "unknown", "no committed offsets yet on some partitions")
        else:
            lag = sum(max(0, p.head - (p.folded or 0)) for p in fold)
            fold_health = ServiceHealth("fold", "ok", f"{lag} records to fold")
        return [
            ServiceHealth("projections", "ok", f"serving version {self._holder.current.version}"),
            self._broker,
            fold_health,
            ServiceHealth("ingester", "unknown", "its own health: GET /webhooks/brevo/health"),
        ]
