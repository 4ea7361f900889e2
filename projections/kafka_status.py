"""The pipeline's status as the projections service sees it on Kafka, read from the broker's offsets."""

from projections.holder import ProjectionHolder
from projections.overview import ActionCounts, FoldPosition, ServiceHealth
from projections.pipeline_watch import PipelineWatch, Positions, fold_lag, held


class KafkaStatus:
    """A `PipelineStatus` over the `/metrics` pipeline watch: `fold` reads the broker, the others reuse it.

    The fold's position is what the live generation's group committed; the actions handled are what the
    effector's group committed, the dead-lettered the records held in the dead-letter topic.
    """

    def __init__(self, watch: PipelineWatch, holder: ProjectionHolder) -> None:
        self._watch = watch
        self._holder = holder

    async def fold(self) -> list[FoldPosition]:
        """Reads the broker, then the live generation's committed offsets against the events topic's end."""
        await self._watch.refresh()
        last = self._watch.last
        if last is None:
            return []
        return [FoldPosition(p, end, last.folded.get(p)) for p, end in sorted(last.events_end.items())]

    async def actions(self) -> ActionCounts:
        """Handled and not dead-lettered, and dead-lettered, as of the last reading."""
        last = self._watch.last
        detail = "handled by the workers' effector (carried out, or found done or not needed), by offsets"
        if last is None:
            return ActionCounts(None, None, detail)
        dead = held(last.dead_first, last.dead_end)
        handled = sum(last.actions_handled.values())
        return ActionCounts(max(0, handled - dead), dead, detail)

    async def services(self) -> list[ServiceHealth]:
        """The projections service, the broker and the fold, as of the last reading."""
        last = self._watch.last
        broker = (
            ServiceHealth("broker", "failing", "offsets cannot be read; figures are from the last reading")
            if self._watch.failing
            else ServiceHealth("broker", "ok" if last else "unknown", "answers" if last else "not read yet")
        )
        return [
            ServiceHealth("projections", "ok", f"serving version {self._holder.current.version}"),
            broker,
            _fold_health(last),
            ServiceHealth("ingester", "unknown", "its own health: GET /webhooks/brevo/health"),
        ]


def _fold_health(last: Positions | None) -> ServiceHealth:
    if last is None or not last.events_end:
        return ServiceHealth("fold", "unknown", "no position known")
    if any(p not in last.folded for p in last.events_end):
        return ServiceHealth("fold", "unknown", "no committed offsets yet on some partitions")
    return ServiceHealth("fold", "ok", f"{sum(fold_lag(last).values())} records to fold")
