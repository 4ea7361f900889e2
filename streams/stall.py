"""A liveness guard for the fold's Faust worker: exit when an owned partition stops moving.

After a rebalance, faust-streaming can keep a partition assigned to a worker that never fetches
it again (seen here when a worker joins just after another became ready). Processing of those
customers would stop for good. The guard watches the events partitions this worker owns, outside
of rebalances and table recovery: when one has records past the group's committed offset and that
offset has not moved for `stall_timeout_s`, it exits the process. The supervisor starts it again,
the group rebalances, and the partition is read from its committed offset: nothing is lost, and
re-reading what was folded but not committed changes nothing (the fold drops duplicates).
"""

import logging
import os
import time

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


def watch_for_stalls(
    app: faust.App, bootstrap_servers: str, topic: str, group: str, timeout_s: float
) -> None:
    """Adds the guard as a timer of the Faust app; a timeout of 0 turns it off."""
    if timeout_s <= 0:
        return
    guard = StallGuard(timeout_s)

    async def check_for_stalls() -> None:
        if app.rebalancing or app.in_recovery:
            guard.reset()
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
