"""A token bucket per client address, for the callers the ingester refuses, in bounded memory.

A hand-written bucket rather than a package's: the maintained limiters (limits, pyrate-limiter,
aiohttp-ratelimiter on top of limits) keep a window or a log of timestamps per key with no bound on
how many keys they track, and limit every caller of a route; here only refused callers are counted,
one float pair per address, at most `max_clients` addresses (the least recently seen is forgotten).
"""

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ingest.allowlist import Address

DEFAULT_MAX_CLIENTS = 65_536
IPV6_GROUP_PREFIX = 64  # one IPv6 client holds a whole /64


class RateLimitError(ValueError):
    """A rate limit that does not parse."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`requests` per `period_s` seconds, in bursts of up to `requests`."""

    requests: int
    period_s: float

    def __post_init__(self) -> None:
        if self.requests < 1 or not 0 < self.period_s < math.inf:
            raise RateLimitError("TAJO_RATE_LIMIT must be <requests>/<seconds>, both positive, as 1000/900")

    @classmethod
    def parse(cls, text: str) -> "RateLimit | None":
        """`1000/900` (1000 requests per 900 s); None for an empty text."""
        if not text.strip():
            return None
        requests, sep, period = text.partition("/")
        try:
            return cls(int(requests), float(period)) if sep else cls(int(requests), 0.0)
        except ValueError as error:
            raise RateLimitError("TAJO_RATE_LIMIT must be <requests>/<seconds>, as 1000/900") from error

    @property
    def per_second(self) -> float:
        """Tokens added back each second."""
        return self.requests / self.period_s


@dataclass(frozen=True, slots=True)
class Verdict:
    """One request's take from its bucket: whether it had a token, what is left, and the waits."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int  # until a token is back (0 when one is there)
    reset_s: int  # until the bucket is full again

    def headers(self) -> dict[str, str]:
        """`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`, and `Retry-After` when refused."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


def client_key(address: Address | None) -> str:
    """The bucket's key: an IPv4 address, an IPv6 address's /64, or `unknown`."""
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_GROUP_PREFIX), strict=False))
    return str(address)


class TokenBuckets:
    """A bucket of `limit.requests` tokens per key, refilled at `limit.per_second`, full when new."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.limit.requests), now))
        return min(float(self.limit.requests), tokens + (now - at) * self.limit.per_second)

    def exhausted(self, key: str) -> bool:
        """True when `key` has no token now (nothing taken)."""
        return key in self._buckets and self._tokens(key, self.clock()) < 1.0

    def take(self, key: str) -> Verdict:
        """Takes a token from `key`'s bucket when it has one."""
        now = self.clock()
        tokens = self._tokens(key, now)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        rate = self.limit.per_second
        return Verdict(
            allowed=allowed,
            limit=self.limit.requests,
            remaining=int(tokens),
            retry_after_s=0 if tokens >= 1.0 else math.ceil((1.0 - tokens) / rate),
            reset_s=math.ceil((self.limit.requests - tokens) / rate),
        )
