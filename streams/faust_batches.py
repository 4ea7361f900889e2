"""Batched delivery for Faust: the records of a topic handed to one handler per fetch, not per message.

Measured on this machine, faust-streaming's path from the fetcher to an agent (a task per message in
the drain loop, the conductor, the channel queue, the stream, the event, the ack) costs about
170 µs of CPU per message: a no-op agent reading with `take_events` handles 1,500 to 3,400
events/s where a plain aiokafka consumer reads 55,000 to 157,000. That path, not the fold, was the
ceiling of the worker.

This module plugs into Faust's transport (Faust picks its transport class from the app, and a
subclass is Faust's own extension point) and changes one thing: for the topics given a batch
handler, the consumer's drain loop hands each fetch's records (as aiokafka returns them) to the
handler as one list, and acknowledges their offsets once the handler's writes are, instead of
turning each into a Faust message sent through the conductor. Everything else stays Faust's: the
consumer group and its rebalances, flow control during recovery, table recovery from changelogs
(still one message at a time), offset commits (of acknowledged offsets only), the other topics
and agents.

From the moment a batch is handed over until its offsets are acknowledged, a marker stands in
Faust's set of messages in flight, so a rebalance waits for the batches in hand (Faust's
`wait_empty`) before it gives the partitions away, and a batch fetched before a rebalance began is
dropped unhandled. A batch is handed over while the one before it is still being written (at most
`WRITING` at once); no offset is acknowledged before its batch's writes, and every earlier batch's,
were acknowledged by the broker.
"""

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Handled:
    """What a batch handler did with a batch: the records it is done with, once `written` completes.

    `written` completes when the batch's writes are acknowledged by the broker; only then are the
    offsets of `done` acknowledged. The records not in `done` are let go unacknowledged: the handler
    rewound their partition and they come again.
    """

    done: Sequence[Any]
    written: Awaitable[None]


# Takes a fetch's records of one topic (aiokafka ConsumerRecords: topic, partition, offset, key, value).
BatchHandler = Callable[[Sequence[Any]], Awaitable[Handled]]

_FETCHING = "FETCHING"


# Faust asks the broker to hold a fetch up to 1.5 s when its partitions have nothing new, and aiokafka
# sends no other fetch to that broker meanwhile: while catching up, a partition read to its end held
# the others' next records for up to 1.5 s per fetch (measured: 1.0-1.2 s stalls between batches).
# New records still end a fetch at once; only a fetch with nothing to return waits this long.
FETCH_MAX_WAIT_MS = 100
# Batches being written at once: one folded while the one before waits for its acknowledgements.
WRITING = 2


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    # How long a stop waits for the thread to say it has shut down (mode's default: 60 s). A thread
    # whose loop crashed (the broker gone: "Unable to bootstrap") never says it, so the fold took a
    # minute to exit and be restarted after each broker loss; a clean stop takes well under a second.
    shutdown_timeout = 5.0

    def _create_worker_consumer(self, *args: Any, **kwargs: Any) -> Any:
        consumer = super()._create_worker_consumer(*args, **kwargs)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by AIOKafkaConsumer.start()
        return consumer


class BatchingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, with batched delivery for the topics that have a batch handler."""

    _writing: "collections.deque[asyncio.Future[None]] | None" = None  # batches being written, oldest first

    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:
        handlers: dict[str, BatchHandler] = getattr(self.transport, "batch_handlers", {})
        try:
            while not (self._stopped.is_set() or fetcher._stopped.is_set()):
                self.diag.set_flag(_FETCHING)
                await asyncio.sleep(0)
                batches, generation = await self._fetch(handlers) if not self.should_stop else ({}, 0)
                self.diag.unset_flag(_FETCHING)
                for topic, records in batches.items():
                    await self._deliver(handlers[topic], records, generation)
        except (*self.consumer_stopped_errors, asyncio.CancelledError):  # type: ignore[misc]  # a tuple
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(_FETCHING)

    def _current(self, generation: int) -> bool:
        """Whether records fetched in `generation` may still be handled (no rebalance began since)."""
        return bool(self.flow_active) and self.app.consumer_generation_id == generation

    async def _fetch(self, handlers: dict[str, BatchHandler]) -> tuple[dict[str, list[Any]], int]:
        """One fetch: the batch topics' records as aiokafka returns them, the others as Faust does.

        Returns them with the consumer generation they were fetched in (read after the wait, which
        may outlast a rebalance, as Faust's own `getmany` does).
        """
        records, active = await self._wait_next_records(1.0)
        generation: int = self.app.consumer_generation_id
        batches: dict[str, list[Any]] = {}
        if records is None or self.should_stop:
            return batches, generation
        if not self.flow_active:  # as Faust does: what was fetched meanwhile is read again from the commit
            await self.perform_seek()
            return batches, generation
        for tp, fetched in records.items():
            if not (active is None or tp in active or tp in self._buffered_partitions):
                continue
            if tp.topic in handlers:
                batches.setdefault(tp.topic, []).extend(fetched)
            else:
                await self._deliver_each(tp, fetched, generation)  # table changelogs while recovering
        return batches, generation

    async def _deliver_each(self, tp: Any, fetched: list[Any], generation: int) -> None:
        """Faust's own path, one message at a time through the conductor, for the other topics."""
        read_offset = self._read_offset
        for record in fetched:
            if not self._current(generation):
                return
            message = self._to_message(tp, record)
            offset = message.offset
            last = read_offset.get(tp)
            if last is not None and offset < last:
                continue  # read before (Faust's own rule)
            if last is not None and offset - last > 1 and self.app.topics.acks_enabled_for(message.topic):
                await self._add_gap(tp, last + 1, offset)
            await self.wait_first(self.callback(message), self.suspend_flow.wait())
            read_offset[tp] = offset

    async def _deliver(self, handler: BatchHandler, records: list[Any], generation: int) -> None:
        """Hands a batch over; its offsets are acknowledged once its writes, and those before, are.

        Batches overlap: while one batch's writes wait for the broker, the next is fetched and
        folded (its own writes go out once the earlier ones are acknowledged: see `TableFold`). At
        most `WRITING` batches are being written at once, and offsets are acknowledged in order.

        A batch fetched before a rebalance began is dropped unhandled: its partitions may be moving,
        and whoever owns them next reads them from the committed offsets. From the moment a batch is
        handed over until its offsets are acknowledged, a marker stands in Faust's set of messages
        in flight, so a rebalance or a stop waits for it (Faust's `wait_empty`).
        """
        if not records or not self._current(generation):
            return
        writing = self._writing
        if writing is None:
            writing = self._writing = collections.deque()
        while len(writing) >= WRITING:
            await writing.popleft()  # raises the error of a failed write: the drain loop stops
        if not self._current(generation):
            return  # a rebalance began meanwhile
        in_flight = _InFlight()
        self._unacked_messages.add(in_flight)  # type: ignore[arg-type]  # stands in for the batch's messages
        try:
            handled = await handler(records)
        except BaseException:
            self._release(in_flight)
            raise
        earlier = writing[-1] if writing else None
        writing.append(asyncio.ensure_future(self._finish(in_flight, handled, earlier)))

    async def _finish(
        self, in_flight: "_InFlight", handled: Handled, earlier: "asyncio.Future[None] | None"
    ) -> None:
        """Once the batch's writes and the earlier batch's are acknowledged, acknowledges its offsets."""
        try:
            if earlier is not None:
                await asyncio.shield(earlier)  # its error is its own to report; this batch waits
            await handled.written
        except BaseException as error:
            self._release(in_flight)
            if not isinstance(error, asyncio.CancelledError):
                # The tables in memory hold states that never reached their changelogs: this process
                # must not fold on. Crashing it (as an exception in the drain loop would) lets the
                # supervisor start a fresh one, which reads the changelogs and the committed offsets.
                log.error("a batch's writes failed, crashing the worker: %r", error)
                await self.app.crash(error)
            raise
        by_tp: dict[tuple[str, int], list[int]] = {}
        for record in handled.done:
            by_tp.setdefault((record.topic, record.partition), []).append(record.offset)
        for (topic, partition), offsets in by_tp.items():
            self._ack_offsets(TP(topic, partition), offsets)
        self._release(in_flight)
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()

    def _release(self, in_flight: "_InFlight") -> None:
        in_flight.acked = True
        self._unacked_messages.discard(in_flight)  # type: ignore[arg-type]
        waiting = self._waiting_for_ack  # Faust's `wait_empty` sleeps on it between looks
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    def _ack_offsets(self, tp: Any, offsets: list[int]) -> None:
        """What `Consumer.ack` does for each message, for a batch of offsets of one partition."""
        committed = self._committed_offset[tp]
        acked_index = self._acked_index[tp]
        fresh = [o for o in offsets if (committed is None or o >= committed) and o not in acked_index]
        acked_index.update(fresh)
        self._acked[tp].extend(fresh)
        self._n_acked += len(fresh)


class _InFlight:
    """Stands in Faust's set of unacknowledged messages for a batch being handled."""

    refcount = 1

    def __init__(self) -> None:
        self.acked = False


class BatchingTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport, creating a `BatchingConsumer`; holds the batch handlers by topic."""

    Consumer = BatchingConsumer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_handlers: dict[str, BatchHandler] = {}


def use_batching_transport(app: faust.App) -> None:
    """Makes the app's consumer a `BatchingConsumer`: call right after creating the app."""
    app.transport = BatchingTransport(app.conf.broker_consumer, app)


def batch_topic(app: faust.App, topic: Any, handler: BatchHandler) -> None:
    """Subscribes the app to `topic` and hands its records to `handler` in batches."""
    transport = app.transport
    if not isinstance(transport, BatchingTransport):
        raise RuntimeError("call use_batching_transport(app) right after creating the app")
    transport.batch_handlers[topic.get_topic_name()] = handler
    app.topics.add(topic)
