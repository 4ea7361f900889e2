"""The read model: every folded state of the engagement table, and indices kept current on each apply.

Each `apply` diffs the key's old state against its new one and updates the indices, so no request
rescans all customers. Everything served is a pure function of the latest state of each key: the
order in which keys are applied does not matter, and `digest()` compares two models.
"""

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Protocol

import orjson
from pydantic import ValidationError

from domain.state import (
    CAMPAIGN_KEY_PREFIX,
    Alert,
    CampaignCounts,
    CampaignState,
    CustomerState,
    InboxMessage,
    canonical_state,
    decode_campaign,
    decode_state,
)
from projections.campaign_view import CampaignStats, campaign_stats
from projections.customer_view import CustomerView, customer_json, customer_view
from projections.feed_view import AlertView, InboxView, Suppression, alert_view, inbox_view, suppression_of
from projections.indices import CampaignTotals, Feed, Links

log = logging.getLogger(__name__)

# How many customers' encoded views are kept for repeated reads, the oldest built dropped first: at
# some 1.3 KB each (measured), beside the 3.2 KB a customer's state takes here, 100,000 is at most
# 130 MB. A view is rebuilt whenever one of the states it was built from was replaced.
SERVED_VIEWS = 100_000


class StateStore(Protocol):
    """What a feeder writes to: the latest encoded state of each table key."""

    def apply(self, key: str, encoded: bytes | None) -> None:
        """Stores a key's encoded state, or forgets the key when given None (a tombstone)."""


def kept(encoded: bytes) -> bytes:
    """A copy of orjson's output, to keep.

    Measured here (orjson 3.13), each `orjson.dumps` result of about 1 KB holds some 8 KB of memory
    as long as it lives; its copy holds its own length. A read model keeps one per key.
    """
    return memoryview(encoded).tobytes()


def _canonical(state: CustomerState | CampaignState) -> bytes:
    if isinstance(state, CustomerState):
        return kept(canonical_state(state))  # its fields as dicts: some 40% faster than the dataclass
    return kept(orjson.dumps(state, option=orjson.OPT_SORT_KEYS))


class ReadModel:
    """Customers by address (email or phone), campaign lifecycles, and the indices served over HTTP.

    A deleted customer is hidden from every lookup and feed (its raw state is kept, so that a later
    undelete shows it again) but still counts in campaign stats: a campaign's history is a fact.
    A record that does not decode is logged and its key forgotten, as a tombstone would.
    """

    @classmethod
    def of(cls, states: Iterable[tuple[str, bytes]]) -> "ReadModel":
        """A read model holding the given (key, encoded state) pairs."""
        model = cls()
        for key, encoded in states:
            model.apply(key, encoded)
        return model

    @classmethod
    def of_states(cls, states: Iterable[tuple[str, CustomerState | CampaignState]]) -> "ReadModel":
        """A read model holding the given (key, state) pairs, states the caller hands over."""
        model = cls()
        for key, state in states:
            if isinstance(state, CampaignState):
                model._set_campaign(key, state)
            else:
                model._set_customer(key, state)
        return model

    def __init__(self, *, served_views: int = SERVED_VIEWS) -> None:
        self._served_views = served_views
        self._customers: dict[str, CustomerState] = {}
        self._lifecycles: dict[str, CampaignState] = {}
        self._canonical: dict[str, bytes] = {}
        self._links = Links()
        self._totals = CampaignTotals()
        self._suppressions: dict[str, Suppression] = {}
        self._alerts: Feed[Alert] = Feed(lambda a: a.alert_id, lambda a: a.at)
        self._inbox: Feed[InboxMessage] = Feed(lambda m: m.message_id, lambda m: m.at)
        # address -> the states its view was built from, and the view encoded as served
        self._served: OrderedDict[str, tuple[CustomerState, CustomerState | None, bytes]] = OrderedDict()
        self.changes = 0  # how many times `apply` changed it: the API's metrics tell when it last did

    # -- writes

    def apply(self, key: str, encoded: bytes | None) -> None:
        """Stores a key's encoded state (a customer, or `campaign:<id>`), or forgets it on None."""
        self.changes += 1
        try:
            if key.startswith(CAMPAIGN_KEY_PREFIX):
                self._set_campaign(key, None if encoded is None else decode_campaign(encoded))
            else:
                self._set_customer(key, None if encoded is None else decode_state(encoded))
        except ValidationError as error:
            log.warning("undecodable state for key %r, forgetting it: %s", key, error.errors()[:1])
            self.apply(key, None)

    def _set_campaign(self, key: str, state: CampaignState | None) -> None:
        camp_id = key.removeprefix(CAMPAIGN_KEY_PREFIX)
        if state is None:
            self._lifecycles.pop(camp_id, None)
            self._canonical.pop(key, None)
        else:
            self._lifecycles[camp_id] = state
            self._canonical[key] = _canonical(state)

    def _set_customer(self, address: str, state: CustomerState | None) -> None:
        old = self._customers.pop(address, None)
        self._canonical.pop(address, None)
        self._served.pop(address, None)
        if state is not None:
            self._customers[address] = state
            self._canonical[address] = _canonical(state)
        self._links.replace(address, None if state is None else self._points_to(state))
        self._totals.replace(old.campaigns if old else {}, state.campaigns if state else {})
        self._alerts.replace(address, old.alerts if old else (), state.alerts if state else ())
        self._inbox.replace(address, old.inbox if old else (), state.inbox if state else ())
        suppression = None if state is None else suppression_of(state)
        if suppression is None:
            self._suppressions.pop(address, None)
        else:
            self._suppressions[address] = suppression

    @staticmethod
    def _points_to(state: CustomerState) -> str | None:
        return state.phone if state.kind == "email" else state.email

    # -- customers

    def state(self, address: str) -> CustomerState | None:
        """The raw folded state of an address, deleted or not."""
        return self._customers.get(address)

    def _pair(self, address: str) -> tuple[CustomerState | None, CustomerState | None]:
        partner = self._links.partner(address)
        return self._customers.get(address), None if partner is None else self._customers.get(partner)

    def _hidden(self, address: str) -> bool:
        return any(s is not None and s.deleted for s in self._pair(address))

    def _shown(self, address: str) -> tuple[CustomerState, CustomerState | None] | None:
        """The states the view of an address is made of; None when unknown or deleted."""
        own, partner = self._pair(address)
        if (own is not None and own.deleted) or (partner is not None and partner.deleted):
            return None
        if own is not None:
            return own, partner
        return None if partner is None else (partner, None)

    def shown_addresses(self, address: str) -> tuple[str, ...] | None:
        """The addresses whose states the view of `address` shows; None when unknown or deleted."""
        shown = self._shown(address)
        if shown is None:
            return None
        return tuple(state.address for state in shown if state is not None)

    def customer(self, address: str) -> CustomerView | None:
        """The merged view of the customer an email or phone belongs to; None when unknown or deleted."""
        shown = self._shown(address)
        return None if shown is None else customer_view(*shown)

    def customer_json(self, address: str) -> bytes | None:
        """`customer(address)` encoded as served, built without a model; None when unknown or deleted.

        The view is a pure function of the two states it shows, and every apply replaces a state
        with a new object: a view built from the very states shown now is served again as it is.
        """
        shown = self._shown(address)
        if shown is None:
            return None
        primary, linked = shown
        served = self._served.get(address)
        if served is not None and served[0] is primary and served[1] is linked:
            return served[2]
        body = customer_json(primary, linked)
        if served is None:
            if self._served_views <= 0:
                return body
            if len(self._served) >= self._served_views:
                self._served.popitem(last=False)  # the oldest built (a dict's first key is not O(1))
        self._served[address] = (primary, linked, kept(body))
        return body

    # -- campaigns

    def campaign(self, key: str) -> CampaignStats | None:
        """The stats of a campaign (`45`) or tag (`tag:welcome`); None when nothing concerns it."""
        counts = self._totals.get(key)
        lifecycle = self._lifecycles.get(key)
        if counts is None and lifecycle is None:
            return None
        return campaign_stats(key, counts or CampaignCounts(), lifecycle)

    def campaigns(self) -> list[CampaignStats]:
        """Every campaign and tag, by key."""
        keys = sorted(self._totals.keys() | self._lifecycles.keys())
        return [stats for stats in map(self.campaign, keys) if stats is not None]

    # -- feeds

    def suppressions(self) -> list[Suppression]:
        """Every address that must not be emailed or texted, by channel then address."""
        listed = [s for a, s in self._suppressions.items() if not self._hidden(a)]
        return sorted(listed, key=lambda s: (s.channel, s.address))

    def alerts(self, limit: int, before: int | None = None) -> list[AlertView]:
        """The newest marketing alerts (older than `before`, epoch ms, when given)."""
        found: list[AlertView] = []
        for alert, holders in self._alerts.newest(before):
            if len(found) >= limit:
                break
            if not all(map(self._hidden, holders)):
                found.append(alert_view(alert))
        return found

    def inbox(self, limit: int, before: int | None = None) -> list[InboxView]:
        """The newest support messages (older than `before`, epoch ms, when given)."""
        found: list[InboxView] = []
        for message, holders in self._inbox.newest(before):
            if len(found) >= limit:
                break
            if not all(map(self._hidden, holders)):
                found.append(inbox_view(message))
        return found

    # -- the whole model

    def digest(self) -> str:
        """SHA-256 over every state held, canonically serialized, by key: equal models, equal digests."""
        digest = hashlib.sha256()
        for key in sorted(self._canonical):
            body = self._canonical[key]
            digest.update(orjson.dumps([key, len(body)]))
            digest.update(body)
        return digest.hexdigest()

    def canonical_states(self) -> Mapping[str, bytes]:
        """Every state held, canonically serialized, by key (read-only)."""
        return MappingProxyType(self._canonical)

    def differing_keys(self, other: "ReadModel") -> list[str]:
        """The keys whose states differ between this model and another, sorted."""
        mine, theirs = self._canonical, other.canonical_states()
        return sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))

    def __len__(self) -> int:
        """How many states (customers, deleted or not, and campaign lifecycles) are held."""
        return len(self._canonical)
