"""Log lines as JSON (or plain text) with no secret, token or full email address in them, whatever logged it.

The formatters redact the finished text of every record (message, arguments, exception and stack), so
a line from any library at any level goes through the same rules: the configured secrets, bearer tokens,
Basic credentials, `sha256=` signatures and Brevo API keys become `[redacted]`; an email keeps its
first character and its domain (`j***@example.com`).
"""

import logging
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from telemetry.context import request_fields, request_id, route_of

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 4  # shorter "secrets" would redact ordinary words

_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_BASIC = re.compile(r"(?i)\b(basic\s+)[A-Za-z0-9+/]{6,}={0,2}")  # base64 of user:pass
_SIGNATURE = re.compile(r"(?i)\b(sha256=)[0-9a-f]+")
_BREVO_KEY = re.compile(r"\bxkey(?:sib|smtpsib)-[A-Za-z0-9-]+")
_API_KEY_HEADER = re.compile(r"(?i)(['\"]?api-key['\"]?\s*[:=]\s*['\"]?)[^\s\"',;}]+")
_EMAIL = re.compile(r"(?<![\w.%+-])([\w%+-])[\w.%+-]*(@|%40)((?:[\w-]+\.)+[\w-]{2,})")

# what a request line says beyond the message, in this order
REQUEST_KEYS = ("request_id", "route", "method", "status", "duration_ms")


def mask_email(match: re.Match[str]) -> str:
    """`jane.doe@example.com` -> `j***@example.com`."""
    return f"{match.group(1)}***{match.group(2)}{match.group(3)}"


class Redactor:
    """Takes secrets, tokens and full email addresses out of a text."""

    def __init__(self, secrets: Iterable[str | bytes | None] = ()) -> None:
        known = {s.decode("utf-8", "replace") if isinstance(s, bytes) else s for s in secrets if s}
        kept = sorted((s for s in known if len(s) >= MIN_SECRET_CHARS), key=len, reverse=True)
        self._secrets = re.compile("|".join(re.escape(s) for s in kept)) if kept else None

    def __call__(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(REDACTED, text)
        text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
        text = _BASIC.sub(rf"\g<1>{REDACTED}", text)
        text = _SIGNATURE.sub(rf"\g<1>{REDACTED}", text)
        text = _BREVO_KEY.sub(REDACTED, text)
        text = _API_KEY_HEADER.sub(rf"\g<1>{REDACTED}", text)
        return _EMAIL.sub(mask_email, text)


class RepeatFilter(logging.Filter):
    """Lets the same line of a chatty library through once per `window_s`.

    aiokafka logs "Topic ... not found in cluster metadata" at ERROR on each metadata retry, every
    100 ms: thousands of lines for one missing topic, burying what explains it. Lines of loggers
    under `prefixes` with the same text are let through once per window; the next one let through
    says how many were held back. Other loggers' lines always pass.
    """

    MAX_KEPT = 1_000  # distinct lines remembered; past that the memory starts afresh

    def __init__(
        self,
        prefixes: tuple[str, ...] = ("aiokafka",),
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefixes = prefixes
        self._window_s = window_s
        self._clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # line -> (let through at, held)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._prefixes):
            return True
        message = record.getMessage()
        key = (record.name, record.levelno, message)
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self._window_s:
            self._seen[key] = (seen[0], seen[1] + 1)
            return False
        if len(self._seen) >= self.MAX_KEPT:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if seen is not None and seen[1]:
            record.msg, record.args = f"{message} (and {seen[1]} more like it held back)", ()
        return True


def _request_extras(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = dict(request_fields())
    for key in REQUEST_KEYS:
        value = record.__dict__.get(key)
        if value is not None:
            fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, pid, message, and more when there is more to say.

    Within a request, request_id and route; on request lines, method, status and duration_ms too; an
    exception and a stack when the record has them.
    """

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,  # the worker's supervisor and its children write to one stream
            "message": record.getMessage(),
        }
        line.update(_request_extras(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        redact = self._redact
        safe = {key: redact(value) if isinstance(value, str) else value for key, value in line.items()}
        return orjson.dumps(safe, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [request_id=... route=...]`, redacted like the JSON lines."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = _request_extras(record)
        if extras:
            text += " [" + " ".join(f"{key}={value}" for key, value in extras.items()) + "]"
        return self._redact(text)


class AccessLogger(AbstractAccessLogger):
    """A request line a request: its id, method, route template (never the path), status and duration."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = route_of(request)
        self.logger.info(
            "%s %s %d",
            request.method,
            route,
            response.status,
            extra={
                "request_id": request_id(request),
                "route": route,
                "method": request.method,
                "status": response.status,
                "duration_ms": round(time * 1000, 3),
            },
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def formatter(kind: str, redact: Redactor) -> logging.Formatter:
    """The formatter for TAJO_LOG_FORMAT (`json` or `text`)."""
    if kind == "text":
        return TextFormatter(redact)
    if kind == "json":
        return JsonFormatter(redact)
    raise ValueError(f"unknown log format {kind!r}: json or text")
