"""How the `tajo-events` processes log: JSON lines (or plain text) on stderr, redacted at the root handler.

TAJO_LOG_FORMAT picks `json` (the default) or `text`, TAJO_LOG_LEVEL the level (INFO). The secrets of
the configuration table never appear in a line, nor does a bearer token, a signature or a full email
address (`telemetry.logs.Redactor`), whichever logger wrote it and at whatever level.
"""

import logging
import os
from collections.abc import Mapping
from typing import IO, Any

from ingest.config import WEBHOOK_CREDENTIALS
from ingest.secret_files import SecretFileError, read_secret
from tajo_events.errors import ConfigError
from telemetry.logs import Redactor, RepeatFilter, formatter

SECRET_VARIABLES = (*WEBHOOK_CREDENTIALS, "TAJO_API_TOKEN", "BREVO_API_KEY")
LOG_FORMATS = ("json", "text")


def log_format(env: Mapping[str, str]) -> str:
    """TAJO_LOG_FORMAT: `json` or `text`."""
    kind = env.get("TAJO_LOG_FORMAT", "json").strip().lower() or "json"
    if kind not in LOG_FORMATS:
        raise ConfigError("TAJO_LOG_FORMAT must be json or text")
    return kind


def log_level(env: Mapping[str, str]) -> int:
    """TAJO_LOG_LEVEL: a level name (DEBUG, INFO, WARNING, ERROR)."""
    name = env.get("TAJO_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    level = logging.getLevelNamesMapping().get(name)
    if level is None:
        raise ConfigError("TAJO_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    return level


def log_formatter(env: Mapping[str, str] = os.environ) -> logging.Formatter:
    """The formatter the environment asks for, redacting the environment's secrets."""
    return formatter(log_format(env), Redactor(_secret_values(env)))


def _secret_values(env: Mapping[str, str]) -> list[str]:
    """Every configured secret, from its variable or `_FILE`; also what follows `user:` or `Name:`."""
    values: list[str] = []
    for name in SECRET_VARIABLES:
        try:
            value = read_secret(env, name)
        except SecretFileError:  # the settings refuse it with the reason; nothing to redact from it
            value = None
        if value:
            values.append(value)
            values += [part.strip() for part in value.split(":", 1)[1:]]  # the password, the header's value
    return values


def configure_logging(env: Mapping[str, str] = os.environ, stream: IO[str] | None = None) -> logging.Handler:
    """Replaces the root logger's handlers with one writing redacted lines to `stream` (stderr)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(log_formatter(env))
    handler.addFilter(RepeatFilter())
    logging.basicConfig(level=log_level(env), handlers=[handler], force=True)
    return handler


def worker_logging_config(env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The same logging as a `logging.config.dictConfig`, for the Faust workers.

    `mode` sets up logging itself (coloured text, its own handlers) unless it is given a config.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"tajo": {"()": log_formatter, "env": dict(env)}},
        "filters": {"repeats": {"()": RepeatFilter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "tajo",
                "filters": ["repeats"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": log_level(env), "handlers": ["default"]},
    }
