"""Incremental indices of the read model: each is updated from the old and new state of one key."""

from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from operator import attrgetter
from typing import Generic, TypeVar

from domain.state import CampaignCounts

T = TypeVar("T")
SUMMED = ("delivered", "opens", "clicks", "bounces", "spam", "unsubscribes")
_summed = attrgetter(*SUMMED)


class Links:
    """Which address each state points to (an email's phone, a phone's email), and the reverse."""

    def __init__(self) -> None:
        self._target: dict[str, str] = {}
        self._claimants: dict[str, set[str]] = {}

    def replace(self, address: str, target: str | None) -> None:
        """Records where the state of `address` now points (None: nowhere)."""
        old = self._target.pop(address, None)
        if old is not None:
            claimants = self._claimants[old]
            claimants.discard(address)
            if not claimants:
                del self._claimants[old]
        if target is not None and target != address:
            self._target[address] = target
            self._claimants.setdefault(target, set()).add(address)

    def partner(self, address: str) -> str | None:
        """The linked address: the one this state points to, else the smallest one pointing here.

        A link is only followed when the other side does not point somewhere else.
        """
        target = self._target.get(address)
        candidates = [target] if target is not None else sorted(self._claimants.get(address, ()))
        return next((c for c in candidates if self._target.get(c, address) == address), None)


class CampaignTotals:
    """Per campaign key, the counts summed over every customer state that holds the key."""

    def __init__(self) -> None:
        self._sums: dict[str, list[int]] = {}  # the SUMMED counts, in order
        self._holders: dict[str, int] = {}
        self._names: dict[str, Counter[str]] = {}

    def replace(self, old: Mapping[str, CampaignCounts], new: Mapping[str, CampaignCounts]) -> None:
        """Takes one state's old contribution out and puts its new one in."""
        for key, counts in old.items():
            self._add(key, counts, -1)
        for key, counts in new.items():
            self._add(key, counts, 1)

    def _add(self, key: str, counts: CampaignCounts, sign: int) -> None:
        # Every customer state holds a few campaign keys, and a rebuild adds each of them: plain
        # lists and dicts, made only for a new key, and the counts read in one go.
        sums = self._sums.get(key)
        if sums is None:
            sums = self._sums[key] = [0] * len(SUMMED)
            self._names[key] = Counter()
        for index, value in enumerate(_summed(counts)):
            sums[index] += sign * value
        holders = self._holders[key] = self._holders.get(key, 0) + sign
        name = counts.name
        if name:
            names = self._names[key]
            names[name] += sign
            if names[name] <= 0:
                del names[name]
        if holders <= 0:
            del self._sums[key], self._holders[key], self._names[key]

    def keys(self) -> set[str]:
        """Every key some state holds."""
        return set(self._sums)

    def get(self, key: str) -> CampaignCounts | None:
        """The summed counts of a key (named by its most common name, then the smallest), or None."""
        sums = self._sums.get(key)
        if sums is None:
            return None
        names = self._names[key]
        name = min(names, key=lambda n: (-names[n], n)) if names else None
        return CampaignCounts(name=name, **dict(zip(SUMMED, sums, strict=True)))


class Feed(Generic[T]):
    """Items held by customer states (alerts, messages), each id once, ordered newest first then by id."""

    def __init__(self, ident: Callable[[T], str], at: Callable[[T], int]) -> None:
        self._ident = ident
        self._at = at
        self._held: dict[str, dict[str, T]] = {}
        self._keys: dict[str, tuple[int, str]] = {}
        self._order: list[tuple[int, str]] = []

    def replace(self, address: str, old: Iterable[T], new: Iterable[T]) -> None:
        """Swaps the items one address's state held for those it holds now."""
        touched: set[str] = set()
        for item in old:
            ident = self._ident(item)
            self._held.get(ident, {}).pop(address, None)
            touched.add(ident)
        for item in new:
            ident = self._ident(item)
            self._held.setdefault(ident, {})[address] = item
            touched.add(ident)
        for ident in touched:
            self._reorder(ident)

    def _reorder(self, ident: str) -> None:
        key = self._keys.pop(ident, None)
        if key is not None:
            del self._order[bisect_left(self._order, key)]
        holders = self._held.get(ident)
        if not holders:
            self._held.pop(ident, None)
            return
        key = (-self._at(holders[min(holders)]), ident)
        insort(self._order, key)
        self._keys[ident] = key

    def newest(self, before: int | None = None) -> Iterator[tuple[T, list[str]]]:
        """Each item (as held by its smallest address) and its holders, newest first, older than `before`."""
        start = 0 if before is None else bisect_left(self._order, (-before + 1, ""))
        for index in range(start, len(self._order)):
            holders = self._held[self._order[index][1]]
            yield holders[min(holders)], sorted(holders)

    def __len__(self) -> int:
        return len(self._order)
