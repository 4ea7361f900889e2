"""What every projection view shares: frozen models, ISO-8601 times and rates."""

from pydantic import BaseModel, ConfigDict

from schemas.event import from_epoch_ms

FROZEN = ConfigDict(frozen=True, extra="forbid")


class ErrorBody(BaseModel):
    """The body of every error answer."""

    model_config = FROZEN

    error: str
    message: str


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO-8601 UTC with a `Z` (milliseconds shown only when not zero), or None."""
    if ms is None:
        return None
    spec = "milliseconds" if ms % 1000 else "seconds"
    return from_epoch_ms(ms).isoformat(timespec=spec).replace("+00:00", "Z")


def rate(part: int, whole: int) -> float | None:
    """`part / whole` rounded to 4 places, or None when `whole` is zero."""
    return None if whole == 0 else round(part / whole, 4)


def latest(*times: int | None) -> int | None:
    """The latest of some optional times."""
    known = [t for t in times if t is not None]
    return max(known) if known else None
