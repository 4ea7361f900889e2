"""Caller verification: the seed's HMAC-SHA256 signature, or the bearer token real Brevo can send."""

import hashlib
import hmac
from collections.abc import Mapping

from ingest.config import IngestSettings

SIGNATURE_HEADER = "X-Brevo-Signature"
_SIGNATURE_PREFIX = "sha256="
_BEARER_PREFIX = "bearer "


def _raw(text: str) -> bytes:
    """The bytes a header (or setting) came as: aiohttp and os.environ decode UTF-8 with surrogateescape.

    Plain `encode()` raises on the lone surrogates a non-UTF-8 byte becomes; compared as bytes, a wrong
    odd byte is just a wrong value.
    """
    return text.encode("utf-8", "surrogateescape")


def sign(secret: bytes, body: bytes) -> str:
    """The `X-Brevo-Signature` value for a body: `sha256=` and the hex HMAC-SHA256 (bare hex is accepted)."""
    return _SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def is_authentic(settings: IngestSettings, headers: Mapping[str, str], body: bytes) -> bool:
    """True when the body carries a valid signature or the request a valid bearer token."""
    return _signature_ok(settings, headers.get(SIGNATURE_HEADER), body) or _token_ok(
        settings, headers.get("Authorization")
    )


def _signature_ok(settings: IngestSettings, header: str | None, body: bytes) -> bool:
    if settings.webhook_secret is None or header is None:
        return False
    presented = header.strip().lower().removeprefix(_SIGNATURE_PREFIX)
    expected = hmac.new(settings.webhook_secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(_raw(presented), expected.encode())


def _token_ok(settings: IngestSettings, header: str | None) -> bool:
    if settings.webhook_token is None or header is None or not header.lower().startswith(_BEARER_PREFIX):
        return False
    presented = header[len(_BEARER_PREFIX) :].strip()
    return hmac.compare_digest(_raw(presented), _raw(settings.webhook_token))
