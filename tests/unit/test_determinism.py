"""Determinism of the fold and the projections: the digest depends on each key's events, nothing else.

The log is partitioned by key (one SQLite partition embedded, several Kafka partitions), so the only
order both adapters agree on is the order of each key's own events. Every canonical event has exactly
one key: a contact event that ties a phone to an email is logged as two events, the contact event under
the email and a `contact.linked` event under the phone, and neither key's fold reads the other's state.
Keeping each key's order is therefore enough, and finer than keeping whole customer groups together.
"""

import ast
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from domain.batch import BatchFold
from eventlog.port import LoggedRecord
from projections.store import ReadModel
from schemas.brevo import canonicalize_all
from schemas.event import CanonicalEvent, encode_event
from schemas.event_types import EventType
from tests.coverage_table import CAMPAIGN_EVENTS, ROWS, UNKNOWN_EVENTS
from tests.fold_helpers import RECEIVED
from tests.payloads import brevo_email, brevo_sms, seed_email

Raw = dict[str, JsonValue]
T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]

# -- the log

EMAILS = ("ann@example.com", "bob@example.com", "cy@example.com")
PHONES = ("+33611110001", "+33611110002")


def raw_log() -> list[Raw]:
    """Every coverage row for a few customers (many at the same time), links, campaigns, duplicates."""
    raws: list[Raw] = []
    for index, row in enumerate(ROWS):
        addresses = PHONES if row.channel == "sms" else EMAILS
        raws += [build(addresses[index % len(addresses)]) for build in (row.seed, row.brevo) if build]
    raws += [
        {"event": "contact_updated", "email": "ann@example.com", "ts": 1700000500, "phone": "+33611110002"},
        {"event": "contact_created", "email": "dee@example.com", "ts": 1700000400, "sms": "+33611110003"},
        brevo_sms("reply", to="33611110003", text="Where is my parcel?"),
        brevo_sms("reply", to="33611110003", text="STOP", date="2025-03-01 10:16:00"),
        seed_email("spam", email="bob@example.com", ts=1700000600, tag="loyalty"),
        brevo_email("click", email="cy@example.com", tags=["loyalty"], link="https://x.example/rewards"),
        {"event": "contact_deleted", "email": "dee@example.com", "ts": 1700000900},
        *(payload for _, payload in CAMPAIGN_EVENTS),
        {"event": "campaign_started", "camp_id": 46, "campaign name": "Autumn", "ts": 1700001000},
        {"event": "campaign_paused", "camp_id": 46, "ts": 1700000900},
        seed_email("delivered", email="ann@example.com", ts=1600000000),  # older than what came before
        *UNKNOWN_EVENTS,
    ]
    return raws + raws[:5]  # a redelivered stretch


def canonical_log() -> list[CanonicalEvent]:
    """The log's canonical events, in log order."""
    return [
        event
        for raw in raw_log()
        for event in canonicalize_all(orjson.loads(orjson.dumps(raw)), RECEIVED)  # as JSON would carry it
    ]


LOG = canonical_log()


def fold_table(events: Iterable[CanonicalEvent]) -> tuple[dict[str, bytes], list[tuple[str, bytes]]]:
    """The final state of each key, and every state change in order (what a changelog carries)."""
    table, _, changes = fold_stores(events)
    return table, changes


def fold_stores(
    events: Iterable[CanonicalEvent],
) -> tuple[dict[str, bytes], dict[str, bytes], list[tuple[str, bytes]]]:
    """The final state and recent ids of each key, and every state change in order."""
    table: dict[str, bytes] = {}
    seen: dict[str, bytes] = {}
    changes: list[tuple[str, bytes]] = []
    folder = BatchFold(table.get, seen.get)
    for offset, event in enumerate(events):
        folder.add(LoggedRecord(0, offset, event.key.encode(), encode_event(event), 0))
        batch = folder.take()  # a batch of one record: every state change, as a changelog carries it
        table.update(batch.states)
        seen.update(batch.seen)
        changes.extend(batch.states.items())
    return table, seen, changes


def digest_of(events: Iterable[CanonicalEvent]) -> str:
    """The digest of a fresh read model fed the final states of folding the events in order."""
    table, _ = fold_table(events)
    return ReadModel.of(table.items()).digest()


def by_key(items: Iterable[tuple[str, object]]) -> dict[str, list[object]]:
    grouped: dict[str, list[object]] = {}
    for key, item in items:
        grouped.setdefault(key, []).append(item)
    return grouped


def interleave(items: Sequence[tuple[str, T]], keys: Iterable[str]) -> list[tuple[str, T]]:
    """The items reordered: the next item of each key in `keys` in turn, so each key keeps its order."""
    queues: dict[str, deque[T]] = {}
    for key, item in items:
        queues.setdefault(key, deque()).append(item)
    return [(key, queues[key].popleft()) for key in keys]


REFERENCE = digest_of(LOG)
KEYED_LOG = [(event.key, event) for event in LOG]


def test_the_log_is_rich_enough_to_tell_orders_apart() -> None:
    keys = {key for key, _ in KEYED_LOG}
    assert {row.kind for row in ROWS} | {EventType.CONTACT_LINKED, EventType.CAMPAIGN_PAUSED} <= {
        event.type for event in LOG
    }
    assert {"campaign:45", "campaign:46", "+33611110002", "+33611110003"} <= keys
    assert len([k for k in keys if "@" in k]) >= 4
    assert len({event.event_id for event in LOG}) < len(LOG)  # duplicates
    assert len(ReadModel.of(fold_table(LOG)[0].items())) >= 9


# -- (a) another interleaving of the keys, each key's order kept


@settings(max_examples=150, deadline=None)
@given(st.permutations([key for key, _ in KEYED_LOG]))
def test_any_interleaving_that_keeps_each_keys_order_gives_the_same_digest(keys: list[str]) -> None:
    reordered = interleave(KEYED_LOG, keys)

    assert by_key(reordered) == by_key(KEYED_LOG)
    assert digest_of(event for _, event in reordered) == REFERENCE


def test_a_round_robin_interleaving_moves_events_yet_keeps_the_digest() -> None:
    grouped = by_key(KEYED_LOG)
    longest = max(map(len, grouped.values()))
    round_robin = [key for turn in range(longest) for key, items in grouped.items() if turn < len(items)]
    reordered = interleave(KEYED_LOG, round_robin)

    assert [event for _, event in reordered] != LOG
    assert digest_of(event for _, event in reordered) == REFERENCE


def test_the_digest_sees_a_lost_or_a_doubled_event() -> None:
    """The property above is not vacuous: a log missing one event, or counting one twice, differs.

    (States keep the newest time of each kind of event, so even another order within a key folds to
    the same state; what must never go unnoticed is an event skipped or folded twice.)
    """
    first = next(event for event in LOG if event.key == "ann@example.com")
    assert digest_of(event for event in LOG if event.event_id != first.event_id) != REFERENCE
    doubled = dataclass_free_copy(first)
    assert digest_of([*LOG, doubled]) != REFERENCE


def dataclass_free_copy(event: CanonicalEvent) -> CanonicalEvent:
    """The same event under another id: what a fold that lost its de-duplication would count twice."""
    return event.model_copy(update={"event_id": "f" * 32})


def test_the_digest_sees_a_missing_event() -> None:
    spam = next(event for event in LOG if event.type is EventType.EMAIL_SPAM)
    assert digest_of(event for event in LOG if event.event_id != spam.event_id) != REFERENCE


# -- (b) the same log folded twice


def test_folding_the_same_log_twice_gives_the_same_digest_and_states() -> None:
    first, second = fold_table(LOG)[0], fold_table(LOG)[0]

    assert first == second
    assert ReadModel.of(first.items()).digest() == ReadModel.of(second.items()).digest() == REFERENCE


def test_folding_the_log_again_over_its_own_states_changes_nothing() -> None:
    """A redelivery of the whole log (at-least-once, a restart before a commit) is absorbed."""
    table, seen, _ = fold_stores(LOG)
    folder = BatchFold(table.get, seen.get)
    folder.add_all(
        LoggedRecord(0, offset, event.key.encode(), encode_event(event), 0)
        for offset, event in enumerate(LOG)
    )
    again = folder.take()

    assert again.states == {}
    assert again.actions == []
    assert again.folded == 0
    assert ReadModel.of(table.items()).digest() == REFERENCE


# -- how each adapter feeds its read model


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_a_changelog_of_every_intermediate_state_equals_the_final_states(data: st.DataObject) -> None:
    """Kafka feeds every intermediate state, partitions interleaved; embedded feeds each batch's last."""
    table, changes = fold_table(LOG)
    changelog = interleave(changes, data.draw(st.permutations([key for key, _ in changes])))
    finals = data.draw(st.permutations(sorted(table.items())))
    from_changelog, from_finals = ReadModel.of(changelog), ReadModel.of(finals)

    assert from_changelog.digest() == from_finals.digest() == REFERENCE
    assert served(from_changelog) == served(from_finals)


def served(model: ReadModel) -> list[bytes]:
    addresses = sorted(key for key in model.canonical_states() if not key.startswith("campaign:"))
    views: list[object] = [model.customer(address) for address in [*addresses, "nobody@example.com"]]
    views += [model.campaigns(), model.suppressions(), model.alerts(500), model.inbox(500)]
    return [orjson.dumps(view, default=lambda m: m.model_dump(mode="json")) for view in views]


# -- (c) no clock, randomness, environment or process identity in the fold and projection modules

# the service around the projections (HTTP, the changelog tail, the broker positions for /metrics) is no
# projection: it may read a clock
SERVICE_MODULES = {"api.py", "changelog.py", "pipeline_watch.py", "kafka_status.py"}
FOLD_MODULES = sorted((ROOT / "domain").glob("*.py")) + sorted(
    p for p in (ROOT / "projections").glob("*.py") if p.name not in SERVICE_MODULES
)
PROJECT_PACKAGES = ("domain", "streams", "projections", "schemas")
FORBIDDEN_MODULES = frozenset({"time", "random", "uuid", "secrets"})
FORBIDDEN_ATTRIBUTES = frozenset(
    {"now", "utcnow", "today", "environ", "environb", "getenv", "getenvb", "urandom", "getpid"}
)
FORBIDDEN_FROM_OS = frozenset({"environ", "environb", "getenv", "getenvb", "urandom", "getpid"})
FORBIDDEN_CALLS = frozenset({"hash", "id", "open", "input"})  # hash(str) varies per process


def impurities(source: str) -> list[str]:
    """What in the source reads a clock, randomness, the environment or the process: `line: what`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                f"{node.lineno}: import {a.name}" for a in node.names if _root(a.name) in FORBIDDEN_MODULES
            ]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            if _root(node.module) in FORBIDDEN_MODULES:
                found.append(f"{node.lineno}: from {node.module} import ...")
            elif node.module == "os":
                names = [a.name for a in node.names if a.name in FORBIDDEN_FROM_OS]
                found += [f"{node.lineno}: from os import {name}" for name in names]
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            found.append(f"{node.lineno}: .{node.attr}")
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS
        ):
            found.append(f"{node.lineno}: {node.func.id}()")
    return found


def _root(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def project_imports(path: Path) -> set[Path]:
    """The project modules (of the fold's packages) a module imports."""
    imported: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for module in modules:
            if _root(module) in PROJECT_PACKAGES:
                candidate = ROOT.joinpath(*module.split(".")).with_suffix(".py")
                if candidate.exists():
                    imported.add(candidate)
    return imported


def closure(paths: Iterable[Path]) -> set[Path]:
    """The modules and every project module they import, transitively."""
    seen: set[Path] = set()
    todo = list(paths)
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += project_imports(path)
    return seen


def test_the_fold_and_projection_modules_read_no_clock_randomness_or_environment() -> None:
    checked = closure(FOLD_MODULES)
    assert all(path.exists() for path in FOLD_MODULES)
    assert {
        ROOT / "schemas" / "event.py",
        ROOT / "schemas" / "upcast.py",
        ROOT / "schemas" / "brevo_fields.py",
        ROOT / "domain" / "actions.py",
    } <= checked
    assert ROOT / "projections" / "api.py" not in checked
    assert ROOT / "schemas" / "brevo.py" not in checked  # the fold reads typed fields, not the ingest parser

    found = {str(path.relative_to(ROOT)): impurities(path.read_text()) for path in sorted(checked)}

    assert {path: what for path, what in found.items() if what} == {}


def test_the_purity_check_finds_the_clock_where_the_ingester_reads_it() -> None:
    found = impurities((ROOT / "ingest" / "app.py").read_text())

    assert any(what.endswith("import time") for what in found)
    assert any(what.endswith(".now") for what in found)


@pytest.mark.parametrize(
    "snippet",
    [
        "import time\nx = time.time()",
        "from time import monotonic",
        "import time as t",
        "from datetime import datetime\nx = datetime.now()",
        "from datetime import UTC, datetime\nx = datetime.now(UTC)",
        "import datetime\nx = datetime.datetime.utcnow()",
        "from datetime import date\nx = date.today()",
        "import random\nx = random.random()",
        "from random import choice",
        "import os\nx = os.environ['TAJO_X']",
        "import os\nx = os.environ.get('TAJO_X')",
        "import os\nx = os.getenv('TAJO_X')",
        "from os import environ",
        "from os import getenv as read",
        "import uuid\nx = uuid.uuid4()",
        "from uuid import uuid4",
        "import secrets",
        "x = hash('a')",
        "x = sorted(items, key=lambda item: id(item))",
        "def f(moment):\n    return moment.now()",
    ],
)
def test_the_purity_check_catches_each_impurity(snippet: str) -> None:
    assert impurities(snippet) != []


@pytest.mark.parametrize(
    "snippet",
    [
        "from datetime import UTC, datetime\nx = datetime.fromisoformat('2024-01-01').replace(tzinfo=UTC)",
        "import hashlib\nx = hashlib.blake2b(b'x', digest_size=16).hexdigest()",
        "from schemas.event import epoch_ms\nnow = 3\ntime = now",
        "import os.path\nx = os.path.join('a', 'b')",
        "x = state.model_copy(update={'last_seen_at': 1})",
    ],
)
def test_the_purity_check_lets_pure_code_through(snippet: str) -> None:
    assert impurities(snippet) == []


def test_no_domain_module_reads_the_raw_payload() -> None:
    """The fold reads the canonical event's typed fields; the raw Brevo body never reaches the domain."""
    mentions = {
        path.name: [n for n, line in enumerate(path.read_text().splitlines(), 1) if "payload" in line]
        for path in sorted((ROOT / "domain").glob("*.py"))
    }
    assert {name: lines for name, lines in mentions.items() if lines} == {}
