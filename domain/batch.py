"""The batch fold: one core for every runtime that folds the log (Faust agent, embedded runner, replays).

It takes log records in order, folds each key's events with the pure handlers of `domain.fold`, and
hands back, per batch, the last state of each key touched (encoded once, with the offset of the
last event folded into it), each touched key's recent event ids, the actions the events asked for
and the next offset of each partition.

Every stored state carries its position, so a record at or before it is recognized as folded
already and skipped (a re-read after a crash or a hand-over changes nothing), whatever the order in
which the runtime's writes reached the store. A Brevo retry, a new record with the id of an earlier
one, is dropped by the key's `SeenEvents`.

An event the fold cannot apply (a handler raises, or the record does not decode) is set aside as a
dead letter (`domain.dead_letters`): the key's state is brought back to what it was before that event
(its stored state at the start of the batch, then the batch's earlier events of the key again), the
event's id is marked in it and left out of the recent ids, and the fold goes on with the next record.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import orjson

from domain.actions import Action
from domain.campaign_fold import apply_campaign, initial_campaign
from domain.dead_letters import DeadLetter, clear, describe, mark
from domain.dedup import HORIZON_MS, SeenEvents
from domain.events import FoldEvent, decode_fold_event
from domain.fold import HANDLERS, Handler, initial_state
from domain.state import (
    CAMPAIGN_KEY_PREFIX,
    CampaignState,
    CustomerState,
    decode_campaign,
    decode_state,
    encode_campaign,
    encode_state,
    offset_of,
    tracked,
)
from schemas.event_types import EventType as T

Load = Callable[[str], bytes | None]


class Record(Protocol):
    """A log record as the batch fold needs it: where it sits in the log, and the encoded event."""

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def value(self) -> bytes: ...


class PlacedAction(NamedTuple):
    """An action with the position of the event that asked for it."""

    partition: int
    offset: int
    action: Action


@dataclass(slots=True)
class Batch:
    """What a batch of records changed."""

    states: dict[str, bytes] = field(default_factory=dict)  # key -> tracked encoded state
    seen: dict[str, bytes] = field(default_factory=dict)  # key -> encoded SeenEvents
    partitions: dict[str, int] = field(default_factory=dict)  # key -> partition of its events
    actions: list[PlacedAction] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)  # records set aside unfolded, in log order
    next_offsets: dict[int, int] = field(default_factory=dict)  # partition -> next offset to fold
    records: int = 0
    folded: int = 0
    duplicates: int = 0
    refolds: int = 0  # records at or before their key's stored position: folded before, skipped

    @property
    def changes(self) -> bool:
        """Whether anything must be written."""
        return bool(self.states or self.seen or self.actions or self.dead)


CHECKPOINT_RECORDS = 100_000  # records kept for bringing a state back before a checkpoint drops them


@dataclass(slots=True)
class _Customer:
    key: str
    state: CustomerState
    offset: int
    seen: SeenEvents
    partition: int
    base: bytes | None  # the state as encoded at the start of the batch (None: no state yet)
    # This batch's records of the key that were not folded, by offset: duplicates (None) and dead letters
    # (their event id, marked in the state). Rare, so kept only when there are some.
    unfolded: dict[int, str | None] | None = None
    dirty: bool = False  # the state (or only its position) changed
    seen_dirty: bool = False
    touched: bool = False  # listed among the batch's touched keys
    paged: bool = False  # has records among those kept since the last checkpoint


@dataclass(slots=True)
class _Campaign:
    state: CampaignState
    offset: int
    partition: int
    dirty: bool = False


class BatchFold:
    """Folds records into private working copies of their keys' states; `take()` hands the batch over.

    `load_state` and `load_seen` read a key's stored state and recent ids as the store has them;
    between two `take()`s the working copies are the truth, so the store need not see a batch's
    changes until it is written. With `keep`, up to that many working copies are kept from one
    batch to the next (they equal what was written); call `forget()` whenever the store may have
    changed under them (a rebalance, a replay's switch). `forgets` counts the times they were dropped.
    With `states_only`, a batch carries the states alone: no recent ids, no actions (for a fold whose
    only outcome is the states, as a rebuild in memory). `handlers` are the fold's, by event type.
    """

    def __init__(  # noqa: PLR0913 - the options after `load_seen` have defaults
        self,
        load_state: Load,
        load_seen: Load,
        horizon_ms: int = HORIZON_MS,
        keep: int = 0,
        *,
        states_only: bool = False,
        handlers: Mapping[T, Handler] = HANDLERS,
    ) -> None:
        self._handlers = handlers
        self._load_state = load_state
        self._load_seen = load_seen
        self._horizon_ms = horizon_ms
        self._keep = keep
        self._states_only = states_only
        self._customers: dict[str, _Customer] = {}
        self._campaigns: dict[str, _Campaign] = {}
        self._touched: dict[str, _Customer] = {}  # the customers this batch changed, in order
        self._batch = Batch()
        self._pages: list[Sequence[Record]] = []  # the batch's records since the checkpoint, as handed over
        self._kept = 0  # how many records the pages hold
        self._paged: list[_Customer] = []  # the customers with records among them
        self.forgets = 0

    @property
    def touched(self) -> int:
        """How many customer keys the batch so far has touched (what `take()` will encode at most)."""
        return len(self._touched)

    def forget(self) -> None:
        """Drops the working copies kept between batches: the store is the truth again."""
        self._customers = {}
        self._campaigns = {}
        self._touched = {}
        self.forgets += 1

    def add_all(self, records: Iterable[Record]) -> None:
        """Folds each record in turn."""
        if not isinstance(records, list | tuple):
            records = list(records)
        if self._kept >= CHECKPOINT_RECORDS:
            self._checkpoint()
        self._pages.append(records)  # kept until `take()`, to bring a state back if an event fails
        self._kept += len(records)
        add = self._add
        for record in records:
            add(record)

    def add(self, record: Record) -> None:
        """Folds one record."""
        self.add_all((record,))

    def _add(self, record: Record) -> None:  # noqa: PLR0912, PLR0915 - one function on the hot path, no call per step
        batch = self._batch
        batch.records += 1
        offset = record.offset
        partition = record.partition
        batch.next_offsets[partition] = offset + 1
        try:
            event = decode_fold_event(record.value)
            event_id, kind, address, _, at = event[:5]  # unpacked once: cheaper than reading fields by name
            int(event_id, 16)  # an id that is no hex digest would stop the recent-ids check below, each time
        except Exception as error:  # any record the fold cannot read is set aside
            self._undecodable(record, error)
            return
        if address is None:
            key = event.key
            if key.startswith(CAMPAIGN_KEY_PREFIX):
                self._fold_campaign(key, event, record)
            return  # unknown events without an address are kept in the log, not folded
        handler = self._handlers.get(kind)
        if handler is None:
            return  # the fold has no handler for it (`folds`): it stays in the log, unfolded
        customer = self._customers.get(address)
        if customer is None:
            customer = self._customer(address, partition)
        if not customer.touched:
            customer.touched = True
            self._touched[address] = customer
        if not customer.paged:
            customer.paged = True
            self._paged.append(customer)
        if offset <= customer.offset:  # folded before; its id may not have reached the store
            batch.refolds += 1
            seen = customer.seen
            if seen.last_offset < offset:
                seen.add(event_id, at, offset)
                customer.seen_dirty = True
            return
        # A re-submitted copy (`dlq retry`) is folded only while its original stands set aside: where
        # the original folded (a replay after the fix) the copy is a duplicate at any distance in time.
        if (not event.resubmitted or event_id in customer.state.dead_letters) and customer.seen.admit(
            event_id, at, offset
        ):
            state = customer.state
            try:
                actions = handler(state, event)
            except Exception as error:  # a handler's failure, whatever it is, sets the event aside
                self._set_aside(customer, event, record, error)
            else:
                if state.dead_letters:
                    clear(state, event_id)
                if actions and not self._states_only:
                    placed = batch.actions
                    for action in actions:
                        placed.append(PlacedAction(partition, offset, action))
                batch.folded += 1
        else:
            batch.duplicates += 1
            if customer.unfolded is None:
                customer.unfolded = {}
            customer.unfolded[offset] = None
        customer.offset = offset  # a duplicate moves the position too: it is never looked at again
        customer.dirty = customer.seen_dirty = True

    def take(self) -> Batch:
        """The batch so far, each touched key encoded once; the next batch starts empty."""
        batch, self._batch = self._batch, Batch()
        touched, self._touched = self._touched, {}
        self._drop_pages()
        states = batch.states
        seen = batch.seen
        partitions = batch.partitions
        write_seen = not self._states_only
        for key, customer in touched.items():
            customer.touched = False
            if customer.dirty:
                states[key] = customer.base = tracked(customer.offset, encode_state(customer.state))
                customer.dirty = False
            if customer.unfolded is not None:
                customer.unfolded = None
            if customer.seen_dirty:
                if write_seen:
                    seen[key] = customer.seen.encode()
                customer.seen_dirty = False
            if key in states or key in seen:
                partitions[key] = customer.partition
        for key, campaign in self._campaigns.items():
            if campaign.dirty:
                states[key] = tracked(campaign.offset, encode_campaign(campaign.state))
                partitions[key] = campaign.partition
                campaign.dirty = False
        if len(self._customers) + len(self._campaigns) > self._keep:
            self.forget()  # kept working copies spare a decode per key and batch, up to `keep` keys
        return batch

    def take_states(self) -> dict[str, CustomerState | CampaignState]:
        """The states the batch so far changed, as objects rather than encoded; the next batch starts empty.

        For a rebuild in memory, whose states go straight into a read model: it spares each key an
        encode here and a decode there. The states are handed over, not copied: they are the caller's.
        """
        self._batch = Batch()
        self._pages = []
        touched, self._touched = self._touched, {}
        states: dict[str, CustomerState | CampaignState] = {}
        for key, customer in touched.items():
            if customer.dirty:
                states[key] = customer.state
        for key, campaign in self._campaigns.items():
            if campaign.dirty:
                states[key] = campaign.state
        self.forget()
        return states

    def _customer(self, key: str, partition: int) -> _Customer:
        stored = self._load_state(key)
        state = initial_state(key) if stored is None else decode_state(stored)
        offset = -1 if stored is None else offset_of(stored)
        seen = SeenEvents.decode(self._load_seen(key), self._horizon_ms)
        customer = self._customers[key] = _Customer(key, state, offset, seen, partition, stored)
        return customer

    def _checkpoint(self) -> None:
        """Each customer with records in the kept pages gets its state now as its base; the pages go.

        A fold that takes its batch once at the end (a replay, a rebuild in memory) would otherwise
        keep every record of the log.
        """
        for customer in self._paged:
            customer.base = tracked(customer.offset, encode_state(customer.state))
            customer.unfolded = None
        self._drop_pages()

    def _drop_pages(self) -> None:
        for customer in self._paged:
            customer.paged = False
        self._paged = []
        self._pages = []
        self._kept = 0

    def _set_aside(self, customer: _Customer, event: FoldEvent, record: Record, error: Exception) -> None:
        """A handler raised: the state as it was before the event, the event marked, the record kept."""
        customer.seen.discard(event.event_id)  # not folded: a later record of it is no duplicate
        customer.state = state = self._restored(customer, record)
        mark(state, event.event_id)
        if customer.unfolded is None:
            customer.unfolded = {}
        customer.unfolded[record.offset] = event.event_id
        self._dead_letter(record, customer.key, event.event_id, error)

    def _restored(self, customer: _Customer, failing: Record) -> CustomerState:
        """The customer's state from the start of the batch with its earlier records of the batch again.

        A handler may have changed the state before it raised. The batch's records of the key after the
        stored position folded once already, but for those `unfolded` names (duplicates, dead letters).
        """
        key, partition, unfolded = customer.key, customer.partition, customer.unfolded or {}
        base = customer.base
        state = initial_state(key) if base is None else decode_state(base)
        position = -1 if base is None else offset_of(base)
        for page in self._pages:
            for record in page:
                if record is failing:
                    return state
                offset = record.offset
                if record.partition != partition or offset <= position:
                    continue
                if offset in unfolded:
                    marked = unfolded[offset]
                    if marked is not None and _identity(record.value)[0] == key:
                        mark(state, marked)
                    continue
                try:
                    event = decode_fold_event(record.value)
                except Exception:  # noqa: S112 - set aside when it came: not this key's, or in `unfolded`
                    continue
                handler = self._handlers.get(event.type)
                if event.address != key or handler is None:
                    continue
                handler(state, event)
                if state.dead_letters:
                    clear(state, event.event_id)
        raise AssertionError("the failing record is not among the batch's records")

    def _undecodable(self, record: Record, error: Exception) -> None:
        """A record the fold cannot read: set aside, marked in its customer's state when it names one."""
        address, event_id = _identity(record.value)
        if address is not None and event_id is not None and not address.startswith(CAMPAIGN_KEY_PREFIX):
            customer = self._customers.get(address) or self._customer(address, record.partition)
            if not customer.touched:
                customer.touched = True
                self._touched[address] = customer
            if not customer.paged:
                customer.paged = True
                self._paged.append(customer)
            if record.offset <= customer.offset:
                self._batch.refolds += 1
                return
            mark(customer.state, event_id)
            if customer.unfolded is None:
                customer.unfolded = {}
            customer.unfolded[record.offset] = event_id
            customer.offset = record.offset
            customer.dirty = True
        self._dead_letter(record, address, event_id, error)

    def _dead_letter(
        self, record: Record, address: str | None, event_id: str | None, error: Exception
    ) -> None:
        error_type, message = describe(error)
        self._batch.dead.append(
            DeadLetter(record.partition, record.offset, record.value, address, event_id, error_type, message)
        )

    def _fold_campaign(self, key: str, event: FoldEvent, record: Record) -> None:
        campaign = self._campaigns.get(key)
        if campaign is None:
            stored = self._load_state(key)
            state = (
                initial_campaign(key[len(CAMPAIGN_KEY_PREFIX) :])
                if stored is None
                else decode_campaign(stored)
            )
            campaign = _Campaign(state, -1 if stored is None else offset_of(stored), record.partition)
        if record.offset <= campaign.offset:
            self._batch.refolds += 1
            return
        # A lifecycle keeps the newest time of each status: applying an event twice changes nothing,
        # so campaigns need no duplicate detection.
        self._campaigns[key] = campaign
        before = campaign.state.copy()  # lifecycle events are few: a copy each costs little
        try:
            changed = apply_campaign(campaign.state, event)
        except Exception as error:  # set aside, as a customer's event would be
            campaign.state = before
            self._dead_letter(record, None, event.event_id, error)
            return
        if changed:
            campaign.offset = record.offset
            campaign.dirty = True
            self._batch.folded += 1


def fold_batch(records: Iterable[Record], load_state: Load, load_seen: Load) -> Batch:
    """Folds a batch of records against the stored states; what it changed."""
    folder = BatchFold(load_state, load_seen)
    folder.add_all(records)
    return folder.take()


# -- the tracking record: per partition, the next offset the fold expects (kept beside the ids)

_POSITION_PREFIX = b"\x00position:"


def position_key(partition: int) -> bytes:
    """The key of a partition's tracking record (no address starts with a NUL byte)."""
    return _POSITION_PREFIX + str(partition).encode()


def encode_position(next_offset: int) -> bytes:
    """A tracking record's value."""
    return str(next_offset).encode()


def decode_position(data: bytes | None) -> int | None:
    """The next offset a tracking record says the fold expects; None when there is none."""
    return None if data is None else int(data)


def _identity(value: bytes) -> tuple[str | None, str | None]:
    """The address and event id a record that does not decode still names, when it names them."""
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(raw, dict):
        return None, None
    address, event_id = raw.get("address"), raw.get("event_id")
    return (
        address if isinstance(address, str) and address else None,
        event_id if isinstance(event_id, str) and event_id else None,
    )
