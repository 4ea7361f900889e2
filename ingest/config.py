"""The ingester's settings, read from the environment once at start-up."""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from ingest.allowlist import NO_ADDRESSES, AddressList, AllowlistError
from ingest.ratelimit import RateLimit, RateLimitError
from ingest.secret_files import SecretFileError, read_secret

N = TypeVar("N", int, float)

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_IN_FLIGHT = 256
DEFAULT_REQUEST_DEADLINE_S = 4.5  # Brevo waits 5 s for an answer
DEFAULT_RATE_LIMIT = RateLimit(1000, 900.0)  # the seed guide's 1000 requests per 15 minutes

# The variables that hold a webhook credential; each may instead be `<NAME>_FILE`, an owner-only file.
WEBHOOK_CREDENTIALS = (
    "BREVO_WEBHOOK_SECRET",
    "BREVO_WEBHOOK_SECRET_PREVIOUS",
    "BREVO_WEBHOOK_TOKEN",
    "BREVO_WEBHOOK_TOKEN_PREVIOUS",
    "BREVO_WEBHOOK_BASIC",
    "BREVO_WEBHOOK_HEADER",
)


class IngestConfigError(ValueError):
    """The environment does not describe a safe, runnable ingester."""


def _secret(value: str | None) -> bytes | None:
    return value.encode("utf-8", "surrogateescape") if value else None


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """How callers authenticate, where they may call from, and how much the ingester takes at once.

    Secrets are kept out of repr(). Each credential has a `_previous` twin, accepted alongside it, so a
    secret is rotated without downtime: the new one in the variable, the old one in `_PREVIOUS` until
    Brevo sends only the new one.
    """

    webhook_secret: bytes | None = field(default=None, repr=False)
    webhook_token: str | None = field(default=None, repr=False)
    webhook_secret_previous: bytes | None = field(default=None, repr=False)
    webhook_token_previous: str | None = field(default=None, repr=False)
    basic_credentials: str | None = field(default=None, repr=False)  # `user:pass`
    custom_header: tuple[str, str] | None = field(default=None, repr=False)  # (name, value)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    public_health: bool = False
    allowed_ips: AddressList | None = None  # None: every address
    trusted_proxies: AddressList = NO_ADDRESSES
    rate_limit: RateLimit = DEFAULT_RATE_LIMIT
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    request_deadline_s: float = DEFAULT_REQUEST_DEADLINE_S

    def __post_init__(self) -> None:
        if not (self.secrets or self.tokens or self.basic_credentials or self.custom_header):
            raise IngestConfigError(
                "refusing to start an open webhook endpoint: set BREVO_WEBHOOK_SECRET (HMAC signature), "
                "BREVO_WEBHOOK_TOKEN (bearer token), BREVO_WEBHOOK_BASIC (user:pass) and/or "
                "BREVO_WEBHOOK_HEADER (Name: value)"
            )
        if self.basic_credentials is not None and ":" not in self.basic_credentials:
            raise IngestConfigError("BREVO_WEBHOOK_BASIC must be user:pass")
        if self.custom_header is not None and not (self.custom_header[0] and self.custom_header[1]):
            raise IngestConfigError("BREVO_WEBHOOK_HEADER must be 'Name: value'")
        if self.max_body_bytes < 1:
            raise IngestConfigError("TAJO_MAX_BODY_BYTES must be a positive number of bytes")
        if self.max_in_flight < 1:
            raise IngestConfigError("TAJO_MAX_IN_FLIGHT must be a positive number of requests")
        if not 0 < self.request_deadline_s < math.inf:
            raise IngestConfigError("TAJO_REQUEST_DEADLINE_S must be a positive number of seconds")

    @property
    def secrets(self) -> tuple[bytes, ...]:
        """The HMAC secrets a signature may be made with: the current one and the previous one."""
        return tuple(s for s in (self.webhook_secret, self.webhook_secret_previous) if s)

    @property
    def tokens(self) -> tuple[str, ...]:
        """The bearer tokens accepted: the current one and the previous one."""
        return tuple(t for t in (self.webhook_token, self.webhook_token_previous) if t)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "IngestSettings":
        """Settings from the BREVO_WEBHOOK_* and TAJO_* variables of the README's configuration table."""
        try:
            found = {name: read_secret(env, name) for name in WEBHOOK_CREDENTIALS}
        except SecretFileError as error:
            raise IngestConfigError(str(error)) from error
        header = found["BREVO_WEBHOOK_HEADER"]
        custom_header = None
        if header is not None:
            name, _, value = header.partition(":")
            custom_header = (name.strip(), value.strip())
        try:
            allowed = env.get("TAJO_ALLOWED_IPS", "").strip()
            allowed_ips = AddressList.parse(allowed, aliases=True) if allowed else None
            trusted = AddressList.parse(env.get("TAJO_TRUSTED_PROXIES", ""))
            rate_limit = RateLimit.parse(env.get("TAJO_RATE_LIMIT", "")) or DEFAULT_RATE_LIMIT
        except (AllowlistError, RateLimitError) as error:
            raise IngestConfigError(str(error)) from error
        return cls(
            webhook_secret=_secret(found["BREVO_WEBHOOK_SECRET"]),
            webhook_token=found["BREVO_WEBHOOK_TOKEN"],
            webhook_secret_previous=_secret(found["BREVO_WEBHOOK_SECRET_PREVIOUS"]),
            webhook_token_previous=found["BREVO_WEBHOOK_TOKEN_PREVIOUS"],
            basic_credentials=found["BREVO_WEBHOOK_BASIC"],
            custom_header=custom_header,
            max_body_bytes=_number(env, "TAJO_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, int),
            public_health=env.get("TAJO_PUBLIC_HEALTH", "").lower() in {"1", "true", "yes"},
            allowed_ips=allowed_ips,
            trusted_proxies=trusted,
            rate_limit=rate_limit,
            max_in_flight=_number(env, "TAJO_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT, int),
            request_deadline_s=_number(env, "TAJO_REQUEST_DEADLINE_S", DEFAULT_REQUEST_DEADLINE_S, float),
        )


def _number(env: Mapping[str, str], name: str, default: N, kind: type[N]) -> N:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return kind(text)
    except ValueError as error:
        raise IngestConfigError(f"{name} must be a number") from error
