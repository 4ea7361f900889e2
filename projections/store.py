"""The read model: the latest engagement state of each customer, as the projections serve it."""

from typing import Protocol

from streams.state import EngagementState, decode_state


class StateStore(Protocol):
    """Where the projections keep the latest state per address."""

    def get(self, address: str) -> EngagementState | None:
        """The customer's state, or None for an unknown address."""

    def apply(self, address: str, encoded: bytes | None) -> None:
        """Stores an encoded state, or forgets the address when given None (a tombstone)."""

    def __len__(self) -> int:
        """How many customers are known."""


class MemoryStateStore:
    """A dict of decoded states: reads cost a lookup."""

    def __init__(self) -> None:
        self._states: dict[str, EngagementState] = {}

    def get(self, address: str) -> EngagementState | None:
        return self._states.get(address)

    def apply(self, address: str, encoded: bytes | None) -> None:
        if encoded is None:
            self._states.pop(address, None)
        else:
            self._states[address] = decode_state(encoded)

    def __len__(self) -> int:
        return len(self._states)
