"""The pipeline at a glance: what the log took in the last hour, the fold's lag, actions, services' health.

The activity comes from the log itself (`projections.log_tail`), the same on both logs; the fold's
position, the actions and the services' health from the runtime around the API (`PipelineStatus`).
"""

from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel

from projections.activity import MINUTE_MS, Activity
from projections.common import FROZEN, iso

ServiceStatus = Literal["ok", "failing", "unknown"]


@dataclass(frozen=True, slots=True)
class FoldPosition:
    """How far the fold has read one partition of the log."""

    partition: int
    head: int  # the offset the next record will get
    folded: int | None  # the next offset the fold will read; None when not known


@dataclass(frozen=True, slots=True)
class ActionCounts:
    """Actions the effector carried out and gave up on (dead-lettered); None where not known here."""

    done: int | None
    dead_lettered: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """One service as this one sees it."""

    name: str
    status: ServiceStatus
    detail: str


class PipelineStatus(Protocol):
    """What the runtime around the API knows of the fold, the actions and the services."""

    async def fold(self) -> list[FoldPosition]:
        """The fold's position on each partition of the log."""

    async def actions(self) -> ActionCounts:
        """The effector's outcomes."""

    async def services(self) -> list[ServiceHealth]:
        """Each service's health."""


class MinuteCounts(BaseModel):
    """Events the log took in one minute, by canonical type (types with none left out)."""

    model_config = FROZEN

    minute: str
    counts: dict[str, int]


class PartitionLag(BaseModel):
    """The fold's position on one partition of the log and how many records it has still to fold."""

    model_config = FROZEN

    partition: int
    head: int
    folded: int | None
    lag: int | None


class UnknownName(BaseModel):
    """An event name the ingester did not know, kept in the log as `unknown`."""

    model_config = FROZEN

    name: str
    count: int


class Actions(BaseModel):
    """Actions carried out and dead-lettered (null when this service cannot know)."""

    model_config = FROZEN

    done: int | None
    dead_lettered: int | None
    detail: str


class Brevo(BaseModel):
    """When the log last took an event, and whether Brevo has been silent for longer than the threshold."""

    model_config = FROZEN

    last_event_at: str | None
    silent_for_s: float | None
    threshold_s: float
    silent: bool


class Service(BaseModel):
    """One service's health."""

    model_config = FROZEN

    name: str
    status: ServiceStatus
    detail: str


class Overview(BaseModel):
    """The pipeline at a glance."""

    model_config = FROZEN

    now: str
    last_hour: list[MinuteCounts]
    last_hour_totals: dict[str, int]
    totals: dict[str, int]
    unknown_names: list[UnknownName]
    fold: list[PartitionLag]
    actions: Actions
    brevo: Brevo
    services: list[Service]
    projection_version: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the overview is built from, gathered at one moment."""

    now_ms: int
    activity: Activity
    fold: list[FoldPosition]
    actions: ActionCounts
    services: list[ServiceHealth]
    silence_threshold_s: float
    projection_version: int


def overview(snapshot: Snapshot) -> Overview:
    """The overview of a snapshot (a pure function of it)."""
    activity = snapshot.activity
    window = activity.window(snapshot.now_ms)
    hour_totals: dict[str, int] = {}
    for _, counts in window:
        for kind, n in counts.items():
            hour_totals[kind] = hour_totals.get(kind, 0) + n
    last = activity.last_appended_ms
    silent_for = None if last is None else max(0.0, (snapshot.now_ms - last) / 1000)
    return Overview(
        now=iso(snapshot.now_ms) or "",
        last_hour=[
            MinuteCounts(minute=iso(minute * MINUTE_MS) or "", counts=dict(sorted(counts.items())))
            for minute, counts in window
        ],
        last_hour_totals=dict(sorted(hour_totals.items())),
        totals=dict(sorted(activity.totals.items())),
        unknown_names=[
            UnknownName(name=name, count=n)
            for name, n in sorted(activity.unknown_names.items(), key=lambda item: (-item[1], item[0]))
        ],
        fold=[
            PartitionLag(
                partition=p.partition,
                head=p.head,
                folded=p.folded,
                lag=None if p.folded is None else max(0, p.head - p.folded),
            )
            for p in snapshot.fold
        ],
        actions=Actions(
            done=snapshot.actions.done,
            dead_lettered=snapshot.actions.dead_lettered,
            detail=snapshot.actions.detail,
        ),
        brevo=Brevo(
            last_event_at=iso(last),
            silent_for_s=None if silent_for is None else round(silent_for, 3),
            threshold_s=snapshot.silence_threshold_s,
            # silent before the first event too: nothing has come at all
            silent=silent_for is None or silent_for >= snapshot.silence_threshold_s,
        ),
        services=[Service(name=s.name, status=s.status, detail=s.detail) for s in snapshot.services],
        projection_version=snapshot.projection_version,
    )


class NoStatus:
    """A `PipelineStatus` that knows nothing (an API built without its runtime, as in tests)."""

    async def fold(self) -> list[FoldPosition]:
        return []

    async def actions(self) -> ActionCounts:
        return ActionCounts(None, None, "not known to this service")

    async def services(self) -> list[ServiceHealth]:
        return [ServiceHealth("projections", "ok", "answering")]
