"""The ingester's settings, read from the environment once at start-up."""

from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


class IngestConfigError(ValueError):
    """The environment does not describe a safe, runnable ingester."""


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """How callers authenticate and how large a body may be. Secrets are kept out of repr()."""

    webhook_secret: bytes | None = field(default=None, repr=False)
    webhook_token: str | None = field(default=None, repr=False)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    public_health: bool = False

    def __post_init__(self) -> None:
        if not self.webhook_secret and not self.webhook_token:
            raise IngestConfigError(
                "refusing to start an open webhook endpoint: set BREVO_WEBHOOK_SECRET (HMAC signature) "
                "and/or BREVO_WEBHOOK_TOKEN (bearer token)"
            )
        if self.max_body_bytes < 1:
            raise IngestConfigError("TAJO_MAX_BODY_BYTES must be a positive number of bytes")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "IngestSettings":
        """Settings from the BREVO_WEBHOOK_* and TAJO_* variables of the README's configuration table."""
        secret = env.get("BREVO_WEBHOOK_SECRET") or None
        try:
            max_body = int(env.get("TAJO_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
        except ValueError as error:
            raise IngestConfigError("TAJO_MAX_BODY_BYTES must be an integer") from error
        return cls(
            webhook_secret=secret.encode() if secret else None,
            webhook_token=env.get("BREVO_WEBHOOK_TOKEN") or None,
            max_body_bytes=max_body,
            public_health=env.get("TAJO_PUBLIC_HEALTH", "").lower() in {"1", "true", "yes"},
        )
