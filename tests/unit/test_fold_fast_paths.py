"""The fold's fast paths give exactly what the plain ways give.

Each shortcut of the hot path is checked against the reference it stands for: the state encoder
against orjson's own dataclass encoding, the event decoder against `FoldEvent.of` and `epoch_ms`,
`SeenEvents.admit` against `is_duplicate` then `add`, the batch core's touched-key bookkeeping and
`states_only` against a plain fold, and a versioned replay that skips reading a new version it knows
to be empty against one that has to read it back.
"""

import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from domain.batch import BatchFold
from domain.dedup import HORIZON_MS, SeenEvents
from domain.events import FoldEvent, UndecodableEvent, decode_fold_event
from domain.state import (
    Alert,
    CampaignCounts,
    CustomerState,
    EmailChannel,
    InboxMessage,
    SmsChannel,
    decode_state,
    encode_state,
    untracked,
)
from eventlog.port import LoggedRecord, LogRecord, ReadStart
from eventlog.sqlite import SqliteEventLog
from projections.store import ReadModel
from replay import core
from replay import embedded as replay
from schemas.brevo import canonicalize_all
from schemas.event import CanonicalEvent, encode_event, epoch_ms
from schemas.event_types import EventType
from streams.embedded import StateDb
from tests.fold_helpers import RECEIVED, records_of
from tests.payloads import brevo_email, brevo_sms

# -- a log with every email kind, campaigns and tags, rewards clicks, SMS and retries

KINDS = ("delivered", "opened", "unique_opened", "click", "request", "soft_bounce", "hard_bounce", "spam")


def mixed_log(events: int = 600, customers: int = 25, seed: int = 3) -> list[CanonicalEvent]:
    """Email events of many kinds over a few customers, some SMS replies, and some Brevo retries."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    raws: list[dict[str, JsonValue]] = []
    for n in range(events):
        if raws and rng.random() < 0.05:
            raws.append(rng.choice(raws[-50:]))  # a retry: the same content, so the same event id
            continue
        if rng.random() < 0.1:
            raws.append(brevo_sms("reply", to=f"3361234{n % 5:04d}", text=rng.choice(["STOP", "hi"]), id=n))
            continue
        extra: dict[str, JsonValue] = {"message-id": f"m-{n}", "ts_epoch": 1_700_000_000_000 + n * 997}
        if rng.random() < 0.4:
            extra |= {"camp_id": rng.choice([7, 8]), "campaign name": rng.choice(["Spring", " "])}
        else:
            tags: list[JsonValue] = list(rng.choice([[], ["loyalty-club"], ["a", " b "]]))
            extra["tags"] = tags
        if rng.random() < 0.3:
            extra["link"] = rng.choice(["https://x.example/rewards", "https://x.example/p"])
        raw = brevo_email(rng.choice(KINDS), email=f"c{rng.randrange(customers)}@example.com", **extra)
        raws.append(orjson.loads(orjson.dumps(raw)))
    return [event for raw in raws for event in canonicalize_all(raw, RECEIVED)]


LOG = mixed_log()


def fold(records: list[LoggedRecord], *, states_only: bool = False) -> dict[str, bytes]:
    folder = BatchFold(lambda _key: None, lambda _key: None, states_only=states_only)
    folder.add_all(records)
    return folder.take().states


# -- the state encoder

ints = st.integers(-(2**63), 2**63 - 1)
times = st.none() | ints
texts = st.text(max_size=12)
maybe_texts = st.none() | texts
counts = st.builds(CampaignCounts, maybe_texts, ints, ints, ints, ints, ints, ints)
states = st.builds(
    CustomerState,
    address=texts,
    kind=st.sampled_from(["email", "phone"]),
    email=maybe_texts,
    phone=maybe_texts,
    email_channel=st.builds(EmailChannel, *[ints] * 11, *[times] * 8, maybe_texts),
    sms=st.builds(SmsChannel, *[ints] * 4, *[times] * 4, maybe_texts, times),
    marketing_off_at=times,
    marketing_on_at=times,
    spam_reported=st.booleans(),
    score=ints,
    loyalty_engagements=ints,
    rewards_visits=ints,
    last_rewards_visit_at=times,
    lists=st.lists(ints, max_size=3).map(tuple),
    linked_at=times,
    contact_known=st.booleans(),
    last_contact_at=times,
    last_deleted_at=times,
    campaigns=st.dictionaries(texts, counts, max_size=4),
    alerts=st.lists(st.builds(Alert, texts, texts, texts, ints, maybe_texts), max_size=2).map(tuple),
    inbox=st.lists(st.builds(InboxMessage, texts, texts, ints, texts), max_size=2).map(tuple),
)


@settings(max_examples=300)
@given(states)
def test_a_state_encodes_byte_for_byte_as_orjson_encodes_the_dataclass(state: CustomerState) -> None:
    assert encode_state(state) == orjson.dumps(state)
    assert decode_state(encode_state(state)) == state


def test_every_folded_state_encodes_as_orjson_encodes_the_dataclass() -> None:
    for encoded in fold(records_of(LOG)).values():
        state = decode_state(encoded)
        assert encode_state(state) == orjson.dumps(state) == untracked(encoded)


# -- the event decoder


def test_a_log_record_decodes_to_the_events_own_fold_view() -> None:
    for event in LOG:
        assert decode_fold_event(encode_event(event)) == FoldEvent.of(event)


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]),
)
def test_the_event_time_is_epoch_ms_of_occurred_at(moment: datetime, zone: timezone) -> None:
    event = LOG[0].model_copy(update={"occurred_at": moment.replace(tzinfo=zone)})
    assert decode_fold_event(encode_event(event)).at == epoch_ms(event.occurred_at)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"schema_version": 2}',
        orjson.dumps({**orjson.loads(encode_event(LOG[0])), "type": "no.such.type"}),
        orjson.dumps({**orjson.loads(encode_event(LOG[0])), "occurred_at": "2026-01-01T00:00:00"}),
        orjson.dumps({**orjson.loads(encode_event(LOG[0])), "occurred_at": 12}),
    ],
)
def test_what_is_not_a_canonical_event_is_refused(data: bytes) -> None:
    with pytest.raises(UndecodableEvent):
        decode_fold_event(data)


# -- recent ids


@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 3 * HORIZON_MS), st.booleans()), max_size=40),
)
def test_admit_is_is_duplicate_then_add(steps: list[tuple[int, int, bool]]) -> None:
    admitted, reference = SeenEvents(), SeenEvents()
    for offset, (ident, at, reencode) in enumerate(steps):
        event_id = f"{ident:032x}"
        fresh = not reference.is_duplicate(event_id, offset)
        reference.add(event_id, at, offset)
        assert admitted.admit(event_id, at, offset) is fresh
        if reencode:  # a batch boundary: what was written is read back
            admitted = SeenEvents.decode(admitted.encode())
            reference = SeenEvents.decode(reference.encode())
        assert admitted.encode() == reference.encode()


# -- the batch core


def test_a_batch_hands_over_only_the_keys_it_touched_even_with_kept_copies() -> None:
    store: dict[str, bytes] = {}
    folder = BatchFold(store.get, lambda _key: None, keep=1000)
    records = records_of(LOG)
    half = len(records) // 2
    folder.add_all(records[:half])
    first = folder.take()
    store.update(first.states)
    later = records[half:]
    touched = {event.key for event in LOG[half:] if event.address is not None}
    folder.add_all(later)
    assert folder.touched == len(touched)
    second = folder.take()
    assert set(second.states) == touched
    assert {**first.states, **second.states} == fold(records)


def test_a_states_only_fold_gives_the_same_states_and_nothing_else() -> None:
    folder = BatchFold(lambda _key: None, lambda _key: None, states_only=True)
    folder.add_all(records_of(LOG))
    batch = folder.take()
    assert batch.states == fold(records_of(LOG))
    assert not batch.seen
    assert not batch.actions


# -- the versioned replay


async def logged(tmp_path: Path, events: list[CanonicalEvent]) -> SqliteEventLog:
    log = SqliteEventLog(tmp_path / "log.db", page_size=7)  # pages end in the middle of customers
    await log.append([LogRecord(event.key.encode(), encode_event(event)) for event in events])
    return log


@pytest.fixture
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    get, seen = StateDb.get, StateDb.seen

    def counted_get(db: StateDb, key: str, version: int | None = None) -> bytes | None:
        reads.append(key)
        return get(db, key, version)

    def counted_seen(db: StateDb, key: str, version: int | None = None) -> bytes | None:
        reads.append(key)
        return seen(db, key, version)

    monkeypatch.setattr(StateDb, "get", counted_get)
    monkeypatch.setattr(StateDb, "seen", counted_seen)
    return reads


# KEEP, FILL_KEYS: as shipped (every working copy kept), then tiny (copies dropped, reads back); a fill
# is looked at after each page the log hands over (7 records here)
SHIPPED = (replay.KEEP, replay.FILL_KEYS)


@pytest.mark.parametrize("sizes", [SHIPPED, (5, 3)])
async def test_a_versioned_replay_gives_the_in_memory_states_whether_or_not_it_reads_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counted_reads: list[str], sizes: tuple[int, int]
) -> None:
    for name, size in zip(("KEEP", "FILL_KEYS"), sizes, strict=True):
        monkeypatch.setattr(replay, name, size)
    log = await logged(tmp_path, LOG)
    db = StateDb(tmp_path / "state.db")
    try:
        version = await replay.replay_embedded(log, db, ReadStart())
        rebuilt = await core.rebuild(log, ReadStart())
        replayed = dict(db.states(version))
        assert replayed == fold(records_of(LOG))
        assert ReadModel.of(replayed.items()).digest() == rebuilt.digest()
    finally:
        db.close()
        await log.stop()
    if sizes == SHIPPED:
        assert counted_reads == []  # a new version holds nothing its working copies do not
    else:
        assert counted_reads  # copies were dropped: the version was read back


async def test_the_log_reads_back_every_record_in_order_across_pages(tmp_path: Path) -> None:
    log = await logged(tmp_path, LOG[:50])
    try:
        records = [record async for record in log.read(ReadStart(offsets={0: 3}))]
    finally:
        await log.stop()
    assert [record.offset for record in records] == list(range(3, 50))
    for record, event in zip(records, LOG[3:50], strict=True):
        assert (record.key, record.value) == (event.key.encode(), encode_event(event))
        assert type(record.key) is bytes
        assert type(record.value) is bytes
        assert type(record.appended_at_ms) is int


def test_the_mixed_log_exercises_what_the_fast_paths_shortcut() -> None:
    kinds = {event.type for event in LOG}
    assert {EventType.EMAIL_CLICKED, EventType.EMAIL_SPAM, EventType.SMS_REPLIED} <= kinds
    assert len({event.event_id for event in LOG}) < len(LOG)  # retries
    assert any(event.campaign for event in LOG)
