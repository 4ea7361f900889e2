"""The projection reads are served from, and the atomic switch to a rebuilt one.

A rebuild (replay) builds a whole new read model aside while the current one keeps answering; `swap`
then replaces it in one assignment, so a request sees either the old projection or the new one,
never a half-built one. Each request pins the projection it started with.
"""

from dataclasses import dataclass

from projections.store import ReadModel


@dataclass(frozen=True, slots=True)
class Projection:
    """One version of the read model."""

    model: ReadModel
    version: int


class ProjectionHolder:
    """Holds the projection in service; `swap` drops the old one for a complete new one."""

    def __init__(self, model: ReadModel | None = None, version: int = 0) -> None:
        self._current = Projection(ReadModel() if model is None else model, version)

    @property
    def current(self) -> Projection:
        """The projection in service now."""
        return self._current

    def swap(self, model: ReadModel, version: int) -> None:
        """Puts a complete model in service; the old one is dropped once its readers are done."""
        self._current = Projection(model, version)

    def apply(self, key: str, encoded: bytes | None) -> None:
        """Applies a changed state to the projection in service."""
        self._current.model.apply(key, encoded)
