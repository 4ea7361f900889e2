"""The Brevo REST API as the effector needs it: a port, its aiohttp adapter, and the settings they read."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.brevo.com/v3"
DEFAULT_SMS_SENDER = "Tajo"
DEFAULT_HELP_TEXT = (
    "Tajo: you get loyalty and order updates by SMS. Reply STOP to unsubscribe. Msg & data rates may apply."
)
_ERROR_DETAIL_CHARS = 200


class BrevoError(Exception):
    """Brevo did not do what was asked; `status` is the HTTP status, None when no answer came."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BrevoTemporaryError(BrevoError):
    """A failure worth retrying: 5xx, 429, a connection error or a timeout."""

    def __init__(self, message: str, status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after_s = retry_after_s


class BrevoPermanentError(BrevoError):
    """A failure that retrying cannot fix: a 4xx other than 429 (bad key, bad request, unknown contact)."""


class BrevoApi(Protocol):
    """The Brevo calls the effector makes."""

    async def send_sms(self, recipient: str, content: str, sender: str, tag: str) -> None:
        """Sends a transactional SMS to `recipient` (digits, country code first, no `+`)."""
        ...

    async def blacklist_sms(self, phone: str) -> None:
        """Blacklists the contact with this phone (E.164, with `+`) for SMS."""
        ...


@dataclass(frozen=True, slots=True)
class BrevoSettings:
    """How to reach Brevo and what the help SMS says. The api key is kept out of repr()."""

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    sms_sender: str = DEFAULT_SMS_SENDER
    help_text: str = DEFAULT_HELP_TEXT

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "BrevoSettings | None":
        """Settings from BREVO_API_KEY, BREVO_API_BASE_URL and TAJO_SMS_*; None without an api key."""
        api_key = env.get("BREVO_API_KEY", "").strip()
        if not api_key:
            return None
        return cls(
            api_key=api_key,
            base_url=(env.get("BREVO_API_BASE_URL", "").strip() or DEFAULT_BASE_URL).rstrip("/"),
            sms_sender=env.get("TAJO_SMS_SENDER", "").strip() or DEFAULT_SMS_SENDER,
            help_text=env.get("TAJO_SMS_HELP_TEXT", "").strip() or DEFAULT_HELP_TEXT,
        )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name in ("Retry-After", "x-sib-ratelimit-reset"):
        try:
            seconds = float(headers.get(name, ""))
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


def error_detail(body: bytes) -> str:
    """What a Brevo error answer says (its `code: message`), cut to a log line's length."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:_ERROR_DETAIL_CHARS].decode(errors="replace")
    if isinstance(parsed, dict):
        parts = [str(parsed[key]) for key in ("code", "message") if key in parsed]
        return ": ".join(parts)[:_ERROR_DETAIL_CHARS]
    return str(parsed)[:_ERROR_DETAIL_CHARS]


class HttpBrevoApi:
    """The Brevo API over HTTP with its own ClientSession; start() before use, stop() after."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float = 10) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"HttpBrevoApi(base_url={self._base_url!r})"

    async def start(self) -> None:
        """Opens the HTTP session; the api key goes into its default headers."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"api-key": self._api_key, "accept": "application/json"},
                timeout=self._timeout,
                json_serialize=lambda value: orjson.dumps(value).decode(),
            )

    async def stop(self) -> None:
        """Closes the HTTP session."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def send_sms(self, recipient: str, content: str, sender: str, tag: str) -> None:
        body = {
            "sender": sender,
            "recipient": recipient,
            "content": content,
            "type": "transactional",
            "tag": tag,
        }
        await self._call("POST", URL(f"{self._base_url}/transactionalSMS/send"), body)

    async def blacklist_sms(self, phone: str) -> None:
        url = URL(f"{self._base_url}/contacts/{quote(phone, safe='')}?identifierType=phone_id", encoded=True)
        await self._call("PUT", url, {"smsBlacklisted": True})

    async def _call(self, method: str, url: URL, body: Mapping[str, object]) -> None:
        if self._session is None:
            raise RuntimeError("HttpBrevoApi.start() was not called")
        what = f"{method} {url.path}"
        try:
            # No redirects: the api key header would follow them to wherever they point.
            async with self._session.request(method, url, json=body, allow_redirects=False) as response:
                answer = await response.read()
                status = response.status
                retry_after = _retry_after(response.headers)
        except TimeoutError as error:
            raise BrevoTemporaryError(f"{what}: no answer within {self._timeout.total}s") from error
        except aiohttp.ClientError as error:
            raise BrevoTemporaryError(f"{what}: {type(error).__name__}: {error}") from error
        if 200 <= status < 300:
            return
        message = f"{what} answered {status}: {error_detail(answer)}"
        if status == 429 or status >= 500:
            raise BrevoTemporaryError(message, status, retry_after)
        raise BrevoPermanentError(message, status)
