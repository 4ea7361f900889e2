"""The `tajo-events webhooks register|audit` and `tajo-events signature` commands, and their Brevo client.

`register` creates the transactional, marketing and SMS webhooks this receiver needs, with bearer auth,
unless a sound one is already there; `audit` lists the account's webhooks and reports how they drift
(webhooks_drift.py holds the rules). `signature` is the seed guide's signature debugging helper.
"""

import argparse
import asyncio
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, TextIO

import aiohttp
import orjson

from ingest.auth import SIGNATURE_HEADER, is_authentic, sign
from ingest.config import IngestSettings
from streams.brevo_api import BrevoError, BrevoSettings, error_detail
from tajo_events.errors import ConfigError
from tajo_events.webhooks_drift import (
    SPECS,
    Audit,
    Webhook,
    WebhookSpec,
    audit,
    create_body,
    receiver_url,
    render,
    webhook_from_api,
)

_PREVIEW_CHARS = 100
EXIT_DRIFT = 1
EXIT_TROUBLE = 2  # the settings, or Brevo's answers, do not let the command do its job


class WebhooksApi(Protocol):
    """The Brevo webhook calls the commands make."""

    async def list_webhooks(self, webhook_type: str) -> list[Mapping[str, object]]:
        """The account's webhooks of one type (`transactional`, `marketing`, `inbound`)."""
        ...

    async def create_webhook(self, body: Mapping[str, object]) -> str:
        """Creates a webhook; returns its id."""
        ...


class HttpWebhooksApi:
    """The Brevo webhooks API over HTTP (`async with`); the api key is sent as the `api-key` header."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float = 15) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"HttpWebhooksApi(base_url={self._base_url!r})"

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            headers={"api-key": self._api_key, "accept": "application/json"}, timeout=self._timeout
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def list_webhooks(self, webhook_type: str) -> list[Mapping[str, object]]:
        answer = await self._call("GET", "/webhooks", params={"type": webhook_type})
        webhooks = answer.get("webhooks") if isinstance(answer, dict) else None
        if webhooks is None:  # Brevo answers an account without webhooks with an empty body or no list
            return []
        if not isinstance(webhooks, list):
            raise BrevoError("GET /webhooks answered without a `webhooks` list")
        return [webhook for webhook in webhooks if isinstance(webhook, dict)]

    async def create_webhook(self, body: Mapping[str, object]) -> str:
        answer = await self._call("POST", "/webhooks", body=body)
        webhook_id = answer.get("id") if isinstance(answer, dict) else None
        if webhook_id is None:
            raise BrevoError("POST /webhooks answered without the new webhook's id")
        return str(webhook_id)

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, object] | None = None,
    ) -> object:
        if self._session is None:
            raise RuntimeError("HttpWebhooksApi is used outside `async with`")
        what = f"{method} {path}"
        data = orjson.dumps(body) if body is not None else None
        headers = {"content-type": "application/json"} if data is not None else None
        try:
            # No redirects: the api key header would follow them to wherever they point.
            url = self._base_url + path
            async with self._session.request(
                method, url, params=params, data=data, headers=headers, allow_redirects=False
            ) as response:
                answer, status = await response.read(), response.status
        except TimeoutError as error:
            raise BrevoError(f"{what}: no answer within {self._timeout.total}s") from error
        except aiohttp.ClientError as error:
            raise BrevoError(f"{what}: {type(error).__name__}: {error}") from error
        if not 200 <= status < 300:
            raise BrevoError(f"{what} answered {status}: {error_detail(answer)}", status)
        try:
            return orjson.loads(answer) if answer.strip() else None
        except orjson.JSONDecodeError as error:
            raise BrevoError(f"{what} answered {status} with a body that is not JSON") from error


async def list_all(api: WebhooksApi, specs: Sequence[WebhookSpec] = SPECS) -> list[Webhook]:
    """The account's webhooks of every type the specs use (SMS ones come within their type's list)."""
    webhooks: list[Webhook] = []
    for webhook_type in dict.fromkeys(spec.type for spec in specs):
        webhooks.extend(webhook_from_api(raw, webhook_type) for raw in await api.list_webhooks(webhook_type))
    return webhooks


@dataclass(frozen=True, slots=True)
class Registered:
    """What register did for one spec: `created`, `present` or `drifted` (left alone), and the audit lines."""

    spec: WebhookSpec
    outcome: str
    webhook_id: str | None
    notes: tuple[str, ...]


async def register(
    api: WebhooksApi, url: str, token: str, specs: Sequence[WebhookSpec] = SPECS
) -> list[Registered]:
    """Creates each spec's webhook unless one is at `url`: a sound one is kept, a drifted one reported.

    A drifted webhook at `url` is left alone (creating another would make a duplicate): audit names what
    to fix. Ours pointing at another URL do not count, so the receiver's new URL gets its webhooks.
    """
    before = audit(await list_all(api, specs), url, token, specs)
    results: list[Registered] = []
    for spec_audit in before.specs:
        spec = spec_audit.spec
        notes = tuple(f"{drift.kind}: {drift.detail}" for drift in spec_audit.drifts)
        sound = spec_audit.sound
        if sound is not None:
            results.append(Registered(spec, "present", sound.id, notes))
        elif spec_audit.at_url:
            results.append(Registered(spec, "drifted", spec_audit.at_url[0].id, notes))
        else:
            created = await api.create_webhook(create_body(spec, url, token))
            notes = tuple(note for note in notes if not note.startswith("missing webhook"))
            results.append(Registered(spec, "created", created, notes))
    return results


def add_webhooks_arguments(parser: argparse.ArgumentParser) -> None:
    """`webhooks register|audit [--url URL]`."""
    parser.description = (
        "Register or audit this receiver's Brevo webhooks (transactional, marketing, SMS) through Brevo's "
        "API. Needs BREVO_API_KEY (BREVO_API_BASE_URL to point elsewhere); register also needs "
        "BREVO_WEBHOOK_TOKEN, the bearer token Brevo will send, which audit compares when Brevo lists it."
    )
    actions = parser.add_subparsers(dest="webhooks_action", required=True)
    for name, help_text in [
        ("register", "create the missing webhooks with bearer auth; never a duplicate (exit 1: one drifted)"),
        ("audit", "report missing events, wrong URL, no auth, duplicates (exit 1 when anything is wrong)"),
    ]:
        action = actions.add_parser(name, help=help_text, description=help_text)
        action.add_argument(
            "--url",
            help="the receiver's public https URL (default $TAJO_PUBLIC_URL); /webhooks/brevo is appended",
        )


def add_signature_arguments(parser: argparse.ArgumentParser) -> None:
    """`signature --body FILE [--header VALUE] [--secret-file FILE | --secret SECRET]`."""
    parser.description = (
        "Show the X-Brevo-Signature (sha256=<hex HMAC-SHA256>) of a body, and with --header whether a "
        "received signature matches it (exit 1 when not). The secret comes from BREVO_WEBHOOK_SECRET or "
        "--secret-file; prefer them to --secret, which other users can read in ps."
    )
    parser.add_argument("--body", required=True, help="the raw body, as received ('-' reads stdin)")
    parser.add_argument("--header", help="the X-Brevo-Signature value received (with or without sha256=)")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret-file", type=Path, help="a file holding the secret (one final newline is ignored)"
    )
    secret.add_argument(
        "--secret", help="the secret itself: visible in ps, prefer BREVO_WEBHOOK_SECRET or --secret-file"
    )


def _settings(env: Mapping[str, str]) -> BrevoSettings:
    brevo = BrevoSettings.from_env(env)
    if brevo is None:
        raise ConfigError("set BREVO_API_KEY (a Brevo API key allowed to manage webhooks)")
    return brevo


def _public_url(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    public = args.url or env.get("TAJO_PUBLIC_URL", "").strip()
    if not public:
        raise ConfigError("give the receiver's public URL: --url https://... or TAJO_PUBLIC_URL")
    try:
        return receiver_url(public)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def run_webhooks(args: argparse.Namespace, env: Mapping[str, str], out: TextIO | None = None) -> int:
    """Runs `webhooks register` or `webhooks audit`: 0 all is well, 1 drift, 2 settings or Brevo failed."""
    out = out or sys.stdout  # looked up now: tests and callers may have replaced it
    url = _public_url(args, env)
    brevo = _settings(env)
    token = env.get("BREVO_WEBHOOK_TOKEN", "").strip() or None
    try:
        if args.webhooks_action == "register":
            if token is None:
                raise ConfigError(
                    "set BREVO_WEBHOOK_TOKEN: Brevo signs nothing, so the webhooks carry this bearer token "
                    "and the receiver refuses calls without it"
                )
            return _report_register(asyncio.run(_register(brevo, url, token)), out)
        result = asyncio.run(_audit(brevo, url, token))
    except BrevoError as error:
        sys.stderr.write(f"tajo-events: Brevo: {error}\n")
        return EXIT_TROUBLE
    out.write(render(result))
    return 0 if result.clean else EXIT_DRIFT


async def _register(brevo: BrevoSettings, url: str, token: str) -> list[Registered]:
    async with HttpWebhooksApi(brevo.base_url, brevo.api_key) as api:
        return await register(api, url, token)


async def _audit(brevo: BrevoSettings, url: str, token: str | None) -> Audit:
    async with HttpWebhooksApi(brevo.base_url, brevo.api_key) as api:
        return audit(await list_all(api), url, token)


def _report_register(results: Sequence[Registered], out: TextIO) -> int:
    said = {
        "created": "created webhook {id}",
        "present": "already registered (webhook {id}), nothing created",
        "drifted": "webhook {id} is there but drifted, left alone (fix it in Brevo, or delete it, register)",
    }
    for result in results:
        spec = result.spec
        out.write(f"{spec.name} ({spec.type}, channel {spec.channel}): ")
        out.write(said[result.outcome].format(id=result.webhook_id) + "\n")
        out.writelines(f"    - {note}\n" for note in result.notes)
    return EXIT_DRIFT if any(result.outcome == "drifted" for result in results) else 0


def _secret(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[bytes, str]:
    if args.secret_file is not None:
        try:
            raw = args.secret_file.read_bytes()
        except OSError as error:
            raise ConfigError(f"cannot read --secret-file: {error.strerror}") from None
        secret = raw.removesuffix(b"\n").removesuffix(b"\r")
        where = f"--secret-file {args.secret_file}"
    elif args.secret is not None:
        sys.stderr.write(
            "tajo-events: warning: a secret on the command line is visible to other users (ps, shell "
            "history); prefer BREVO_WEBHOOK_SECRET or --secret-file\n"
        )
        secret, where = args.secret.encode("utf-8", "surrogateescape"), "--secret"
    else:
        secret = env.get("BREVO_WEBHOOK_SECRET", "").encode("utf-8", "surrogateescape")
        where = "BREVO_WEBHOOK_SECRET"
    if not secret:
        raise ConfigError("no secret: set BREVO_WEBHOOK_SECRET, or give --secret-file")
    return secret, where


def _body(path: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read --body {path}: {error.strerror}") from None


def _received(header: str) -> str:
    """The signature value of a pasted header, with or without its `X-Brevo-Signature:` name."""
    name, colon, value = header.partition(":")
    return value.strip() if colon and name.strip().lower() == SIGNATURE_HEADER.lower() else header.strip()


def _matches(secret: bytes, signature: str, body: bytes) -> bool:
    """The receiver's own check (ingest/auth.py), so the answer is the one the receiver would give."""
    return is_authentic(IngestSettings(webhook_secret=secret), {SIGNATURE_HEADER: signature}, body)


def run_signature(args: argparse.Namespace, env: Mapping[str, str], out: TextIO | None = None) -> int:
    """Prints the body's signature; with --header, whether it matches (0) or not (1), and likely causes."""
    out = out or sys.stdout  # looked up now: tests and callers may have replaced it
    secret, where = _secret(args, env)
    body = _body(args.body)
    preview = body[:_PREVIEW_CHARS].decode("utf-8", "replace")
    out.write(f"body:      {args.body} ({len(body)} bytes)\n")
    out.write(f"first {_PREVIEW_CHARS}: {preview!r}\n")
    out.write(f"secret:    from {where} ({len(secret)} bytes)\n")
    out.write(f"expected:  {SIGNATURE_HEADER}: {sign(secret, body)}\n")
    if args.header is None:
        return 0
    received = _received(args.header)
    out.write(f"received:  {received}\n")
    if _matches(secret, received, body):
        out.write("match:     yes\n")
        return 0
    out.write("match:     NO\n")
    out.writelines(f"  - {hint}\n" for hint in _hints(secret, received, body))
    return 1


def _hints(secret: bytes, received: str, body: bytes) -> list[str]:
    digest = received.lower().removeprefix("sha256=")
    if len(digest) != 64 or any(char not in "0123456789abcdef" for char in digest):
        return ["the header is not sha256= and 64 hex digits: is it the X-Brevo-Signature value?"]
    trimmed = body.rstrip(b"\r\n")
    if trimmed != body and _matches(secret, received, trimmed):
        return ["it is the signature of the body without its final newline: the file gained one"]
    if _matches(secret, received, body + b"\n"):
        return ["it is the signature of the body with a final newline: the file lost one"]
    return [
        "a different secret: the sender's BREVO_WEBHOOK_SECRET must equal this one, byte for byte",
        "or different bytes: sign the raw body as sent, not JSON parsed and serialized again "
        "(key order, spaces and escapes change the signature)",
    ]
