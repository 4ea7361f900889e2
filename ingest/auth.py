"""Caller verification, every way the ingester may be configured to take, each in constant time.

The seed's HMAC-SHA256 signature (`X-Brevo-Signature`), and what real Brevo sends: a bearer token,
HTTP Basic (the credentials put in the webhook's URL), a static custom header. Each way configured
is accepted; the signature and the token each take a current and a previous value (rotation).
"""

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from ingest.config import IngestSettings

SIGNATURE_HEADER = "X-Brevo-Signature"
_SIGNATURE_PREFIX = "sha256="
_BEARER_PREFIX = "bearer "
_BASIC_PREFIX = "basic "


def _raw(text: str) -> bytes:
    """The bytes a header (or setting) came as: aiohttp and os.environ decode UTF-8 with surrogateescape.

    Plain `encode()` raises on the lone surrogates a non-UTF-8 byte becomes; compared as bytes, a wrong
    odd byte is just a wrong value.
    """
    return text.encode("utf-8", "surrogateescape")


def _one_of(presented: bytes, accepted: tuple[bytes, ...]) -> bool:
    """True when `presented` is one of `accepted`; every one is compared, in constant time each."""
    found = False
    for value in accepted:
        found |= hmac.compare_digest(presented, value)
    return found


def sign(secret: bytes, body: bytes) -> str:
    """The `X-Brevo-Signature` value for a body: `sha256=` and the hex HMAC-SHA256 (bare hex is accepted)."""
    return _SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def is_authentic(settings: IngestSettings, headers: Mapping[str, str], body: bytes) -> bool:
    """True when the body carries a valid signature or the request valid header credentials."""
    return header_authentic(settings, headers) or _signature_ok(settings, headers.get(SIGNATURE_HEADER), body)


def header_authentic(settings: IngestSettings, headers: Mapping[str, str]) -> bool:
    """True when the headers alone authenticate the request (bearer, Basic or the custom header)."""
    authorization = headers.get("Authorization")
    return (
        _token_ok(settings, authorization)
        or _basic_ok(settings, authorization)
        or _custom_header_ok(settings, headers)
    )


def presents_credentials(settings: IngestSettings, headers: Mapping[str, str]) -> bool:
    """True when the request carries any header a configured way reads, right or wrong."""
    if SIGNATURE_HEADER in headers or "Authorization" in headers:
        return True
    return settings.custom_header is not None and settings.custom_header[0] in headers


def signs(settings: IngestSettings, headers: Mapping[str, str]) -> bool:
    """True when the request carries a signature the settings could check (that needs the body)."""
    return bool(settings.secrets) and SIGNATURE_HEADER in headers


def _signature_ok(settings: IngestSettings, header: str | None, body: bytes) -> bool:
    if not settings.secrets or header is None:
        return False
    presented = _raw(header.strip().lower().removeprefix(_SIGNATURE_PREFIX))
    expected = tuple(hmac.new(s, body, hashlib.sha256).hexdigest().encode() for s in settings.secrets)
    return _one_of(presented, expected)


def _token_ok(settings: IngestSettings, header: str | None) -> bool:
    if not settings.tokens or header is None or header[:7].lower() != _BEARER_PREFIX:
        return False
    presented = _raw(header[len(_BEARER_PREFIX) :].strip())
    return _one_of(presented, tuple(_raw(token) for token in settings.tokens))


def _basic_ok(settings: IngestSettings, header: str | None) -> bool:
    if settings.basic_credentials is None or header is None or header[:6].lower() != _BASIC_PREFIX:
        return False
    try:
        presented = base64.b64decode(_raw(header[len(_BASIC_PREFIX) :].strip()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(presented, _raw(settings.basic_credentials))


def _custom_header_ok(settings: IngestSettings, headers: Mapping[str, str]) -> bool:
    if settings.custom_header is None:
        return False
    name, expected = settings.custom_header
    presented = headers.get(name)
    return presented is not None and hmac.compare_digest(_raw(presented.strip()), _raw(expected))
