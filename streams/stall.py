"""A liveness guard for the fold's Faust worker: exit when an owned partition or a rebalance stops moving.

After a rebalance, faust-streaming can keep a partition assigned to a worker that never fetches
it again (seen here when a worker joins just after another became ready). Processing of those
customers would stop for good. The guard watches the events partitions this worker owns, outside
of rebalances and table recovery: when one has records past the group's committed offset and that
offset has not moved for `stall_timeout_s`, it exits the process. The supervisor starts it again,
the group rebalances, and the partition is read from its committed offset: nothing is lost, and
re-reading what was folded but not committed changes nothing (the fold drops duplicates).

Faust can also hang inside a rebalance or a table recovery (faust-streaming issues 21, 74, 133:
a recovery or a "wait for streams" that never ends; seen here as a worker that took over its
partner's partitions and never became ready again). Faust counts the whole time from a revocation
to "Worker ready" as rebalancing, so the partition watch stands aside then; a second watch takes
over (`watch_transitions`): when the group generation and the changelog offsets recovery has read
stay the same for `stall_timeout_s` (and at least the broker's rebalance timeout plus the session
timeout, as long as a healthy member may wait in a join), the worker exits the same way.
"""

import logging
import os
import threading
import time
from collections.abc import Hashable

import faust

from eventlog.kafka_reader import KafkaLogReader, committed_offsets

log = logging.getLogger(__name__)

STALLED_EXIT_CODE = 75  # EX_TEMPFAIL: try again


class StallGuard:
    """Tracks, per owned partition, since when its committed offset has not moved while behind."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._since: dict[int, tuple[int, float]] = {}

    def stalled(
        self, owned: set[int], committed: dict[int, int], ends: dict[int, int], now: float
    ) -> list[int]:
        """The owned partitions behind their end whose committed offset has not moved for the timeout."""
        stuck = []
        for partition in sorted(owned):
            done, end = committed.get(partition, 0), ends.get(partition, 0)
            last = self._since.get(partition)
            if done >= end:
                self._since.pop(partition, None)
            elif last is None or last[0] != done:
                self._since[partition] = (done, now)
            elif now - last[1] >= self.timeout_s:
                stuck.append(partition)
        for partition in set(self._since) - owned:
            del self._since[partition]
        return stuck

    def reset(self) -> None:
        """Forgets every partition (after a rebalance or during recovery)."""
        self._since.clear()


class TransitionWatch:
    """Since when a rebalance or table recovery has shown no progress."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._last: tuple[Hashable, float] | None = None

    def stuck(self, progress: Hashable, now: float) -> bool:
        """True when `progress` has been the same for the timeout while the transition lasted."""
        if self._last is None or self._last[0] != progress:
            self._last = (progress, now)
            return False
        return now - self._last[1] >= self.timeout_s

    def over(self) -> None:
        """The transition ended (the worker is ready again)."""
        self._last = None


def _transition_progress(app: faust.App) -> tuple[int, int, int, int, int]:
    """What moves while a rebalance or recovery goes well: the generation, the changelog offsets read.

    Faust makes its recovery service when first asked for it, bound to the asking thread's event loop:
    this reads the one the table manager made, if it did, and never makes one.
    """
    generation: int = app.consumer_generation_id
    recovery = getattr(app.tables, "_recovery", None)
    if recovery is None:
        return generation, 0, 0, 0, 0
    active = [offset for offset in list(recovery.active_offsets.values()) if offset is not None]
    standby = [offset for offset in list(recovery.standby_offsets.values()) if offset is not None]
    return generation, len(active), sum(active), len(standby), sum(standby)


def transition_limit(stall_timeout_s: float, rebalance_timeout_s: float, session_timeout_s: float) -> float:
    """How long a transition may show no progress before the worker exits.

    A healthy member waits in the group's join, its generation unchanged, for as long as the broker
    waits for the slowest member to rejoin (the rebalance timeout) and then for a member gone silent
    (the session timeout); only past both does standing still mean a hang here.
    """
    return max(stall_timeout_s, rebalance_timeout_s + session_timeout_s)


def watch_for_stalls(
    app: faust.App, bootstrap_servers: str, topic: str, group: str, timeout_s: float
) -> None:
    """Adds the guard as a timer of the Faust app; a timeout of 0 turns it off."""
    if timeout_s <= 0:
        return
    guard = StallGuard(timeout_s)

    async def check_for_stalls() -> None:
        if app.rebalancing or app.in_recovery:
            guard.reset()  # the transition watch (a thread of its own) looks after this time
            return
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}
        if not owned:
            guard.reset()
            return
        committed = await committed_offsets(bootstrap_servers, group, topic)
        ends = await KafkaLogReader(bootstrap_servers, topic).head()
        stuck = guard.stalled(owned, committed, ends, time.monotonic())
        if stuck:
            log.error(
                "partitions %s of %s made no progress for %.0fs; exiting to rejoin", stuck, topic, timeout_s
            )
            os._exit(STALLED_EXIT_CODE)  # committed offsets are backed by acknowledged writes

    app.timer(interval=max(1.0, timeout_s / 6))(check_for_stalls)


def watch_transitions(app: faust.App, stall_timeout_s: float) -> threading.Thread | None:
    """Starts the transition watch on a daemon thread of its own; a timeout of 0 turns it off.

    Not a Faust timer: Faust starts an app's timers only once its first table recovery is complete,
    and a hang in that first recovery is one to catch. A thread also sees a hang that blocks the
    event loop. Until its first rebalance has ended the worker counts as in transition too. It only
    reads the app's attributes; an error in a reading is logged and the watch goes on.
    """
    if stall_timeout_s <= 0:
        return None
    conf = app.conf
    limit = transition_limit(
        stall_timeout_s, float(conf.broker_rebalance_timeout), float(conf.broker_session_timeout)
    )
    watch = TransitionWatch(limit)

    def check() -> None:
        if app.rebalancing or app.in_recovery or app.rebalancing_count == 0:
            progress = _transition_progress(app)
            if watch.stuck(progress, time.monotonic()):
                log.error(
                    "rebalance or recovery made no progress for %.0fs (generation %d); exiting to rejoin",
                    limit,
                    progress[0],
                )
                os._exit(STALLED_EXIT_CODE)
        else:
            watch.over()

    def run() -> None:
        while True:
            time.sleep(max(1.0, stall_timeout_s / 6))
            try:
                check()
            except Exception:  # a reading taken while Faust changed what it read: the next one will do
                log.exception("the transition watch could not read the worker's state")

    thread = threading.Thread(target=run, name="transition-watch", daemon=True)
    thread.start()
    return thread
