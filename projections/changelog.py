"""Feeds the read model from the engagement table's Kafka changelog, from offset zero, on every partition."""

from eventlog.kafka_follow import Records, TopicFollower
from projections.store import StateStore


class ChangelogFeeder:
    """Tails a compacted changelog topic and applies each record to a state store."""

    def __init__(self, bootstrap_servers: str, topic: str, store: StateStore) -> None:
        """Feeds `store` from `topic`, from offset zero."""
        self._topic = topic
        self._store = store
        self._follower = TopicFollower(bootstrap_servers, topic, self._apply)
        self.applied = 0

    async def start(self) -> None:
        """Starts tailing in the background; the topic may not exist yet."""
        self._follower.start(f"changelog-feeder:{self._topic}")

    async def stop(self) -> None:
        """Stops tailing."""
        await self._follower.stop()

    def reached(self, ends: dict[int, int]) -> bool:
        """True once every record before `ends` (offsets per partition) has been applied."""
        return self._follower.reached(ends)

    def _apply(self, _partition: int, records: Records) -> None:
        for record in records:
            if record.key is not None:
                self._store.apply(record.key.decode(), record.value)
                self.applied += 1
