"""Which Brevo webhooks this receiver needs, and how the account's webhooks drift from them: pure functions.

Brevo subscribes with its own names (camelCase: `hardBounce`, `uniqueOpened`, ...), not the names the
payloads carry (`hard_bounce`, `unique_opened`): see BREVO.md section 2. Transactional and marketing
webhooks are configured separately, and an SMS webhook is a transactional one on channel `sms`.
Brevo signs nothing, so each webhook carries the bearer token the receiver checks (BREVO_WEBHOOK_TOKEN).
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import SplitResult, urlsplit, urlunsplit

RECEIVER_PATH = "/webhooks/brevo"
DESCRIPTION_PREFIX = "tajo-events"


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    """One webhook the receiver needs: its Brevo `type` and `channel`, and the events to subscribe to."""

    name: str
    type: str
    channel: str
    events: tuple[str, ...]

    @property
    def description(self) -> str:
        """The description register gives it, which also marks it as this receiver's in an audit."""
        return f"{DESCRIPTION_PREFIX}: {self.name} events"


SPECS: tuple[WebhookSpec, ...] = (
    WebhookSpec(
        "transactional",
        "transactional",
        "email",
        (
            "request",  # arrives as `request` (`sent` is the same subscription)
            "delivered",
            "opened",
            "uniqueOpened",
            "click",
            "softBounce",
            "hardBounce",
            "invalid",  # arrives as `invalid_email`
            "deferred",
            "blocked",
            "spam",  # arrives as `spam` or `complaint`
            "unsubscribed",
        ),
    ),
    WebhookSpec(
        "marketing",
        "marketing",
        "email",
        (
            "delivered",
            "opened",
            "click",
            "softBounce",
            "hardBounce",
            "spam",
            "unsubscribed",
            "listAddition",
            "contactUpdated",
            "contactDeleted",
        ),
    ),
    WebhookSpec(
        "sms",
        "transactional",
        "sms",
        # msg_status sent, delivered, soft_bounce, hard_bounce; replies (STOP, HELP) as `reply`
        ("sent", "delivered", "softBounce", "hardBounce", "reply"),
    ),
)

# Names that mean the same subscription, per channel, compared after _key() (lower case, no `_`).
_ALIASES: dict[str, dict[str, str]] = {
    "email": {"sent": "request"},
    "sms": {"replied": "reply"},
}
# SMS-only subscription names, to tell an SMS webhook from an email one when a listing has no `channel`.
_SMS_ONLY = frozenset({"accepted", "reply", "replied", "unsubscribe", "subscribe", "skip", "blacklisted"})


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook as Brevo lists it, reduced to what the audit compares. `auth_token` stays out of repr()."""

    id: str
    type: str
    channel: str
    url: str
    events: tuple[str, ...]
    description: str = ""
    auth_type: str | None = None
    auth_token: str | None = None
    header_bearer: str | None = None
    enabled: bool | None = None

    def __repr__(self) -> str:
        where = f"type={self.type!r}, channel={self.channel!r}, url={redact(self.url)!r}"
        return f"Webhook(id={self.id!r}, {where})"

    @property
    def bearer(self) -> bool:
        """True when Brevo sends `Authorization: Bearer ...`: the webhook's bearer auth or a static header."""
        return self.auth_type == "bearer" or self.header_bearer is not None

    @property
    def token(self) -> str | None:
        """The bearer token as listed, when the listing shows it."""
        return self.auth_token if self.auth_type == "bearer" and self.auth_token else self.header_bearer


def _text(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _header_bearer(headers: object) -> str | None:
    if not isinstance(headers, list):
        return None
    for header in headers:
        if isinstance(header, Mapping) and _text(header.get("key")).strip().lower() == "authorization":
            value = _text(header.get("value")).strip()
            if value.lower().startswith("bearer "):
                return value[len("bearer ") :].strip()
    return None


def _enabled(raw: Mapping[str, object]) -> bool | None:
    for key in ("is_enabled", "isEnabled", "enabled"):
        value = raw.get(key)
        if isinstance(value, bool):
            return value
    return None


def webhook_from_api(raw: Mapping[str, object], listed_type: str) -> Webhook:
    """A webhook from one entry of `GET /webhooks?type=...`; missing fields read as empty."""
    events_raw = raw.get("events")
    events = tuple(_text(event) for event in events_raw) if isinstance(events_raw, list) else ()
    auth = raw.get("auth")
    auth_type = auth_token = None
    if isinstance(auth, Mapping):
        auth_type = _text(auth.get("type")).strip().lower() or None
        auth_token = _text(auth.get("token")) or None
    description = _text(raw.get("description"))
    channel = _text(raw.get("channel")).strip().lower() or _infer_channel(description, events)
    return Webhook(
        id=_text(raw.get("id")),
        type=_text(raw.get("type")).strip().lower() or listed_type,
        channel=channel,
        url=_text(raw.get("url")),
        events=events,
        description=description,
        auth_type=auth_type,
        auth_token=auth_token,
        header_bearer=_header_bearer(raw.get("headers")),
        enabled=_enabled(raw),
    )


def _infer_channel(description: str, events: Sequence[str]) -> str:
    """`sms` or `email` for a listing without `channel`: by our own description, else by SMS-only names."""
    if description.startswith(f"{DESCRIPTION_PREFIX}: sms"):
        return "sms"
    return "sms" if any(_key(event) in _SMS_ONLY for event in events) else "email"


def _key(event: str) -> str:
    return event.replace("_", "").replace("-", "").strip().lower()


def _canonical(channel: str, event: str) -> str:
    key = _key(event)
    return _ALIASES.get(channel, {}).get(key, key)


def missing_events(spec: WebhookSpec, webhook: Webhook) -> list[str]:
    """The spec's events the webhook is not subscribed to (`hard_bounce` counts as `hardBounce`)."""
    have = {_canonical(spec.channel, event) for event in webhook.events}
    return [event for event in spec.events if _canonical(spec.channel, event) not in have]


def _parts(url: str) -> SplitResult:
    return urlsplit(url.strip())


def normalize_url(url: str) -> str:
    """The URL compared: scheme and host lower-cased, default port, credentials and final `/` dropped."""
    parts = _parts(url)
    host = (parts.hostname or "").lower()
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, default) else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), parts.query, ""))


def redact(url: str) -> str:
    """The URL with any password replaced by `***`: listings may carry Basic credentials."""
    parts = _parts(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def receiver_url(public_url: str) -> str:
    """The webhook URL for the receiver's public URL: `https://host[/prefix]` + `/webhooks/brevo`.

    Raises ValueError for anything Brevo should not be given: not https (the bearer token travels in
    the request), credentials in the URL (the receiver checks a bearer token, not Basic auth), no host.
    """
    parts = _parts(public_url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise ValueError(f"the public URL must be https://host[/path], got {redact(public_url)!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "put no credentials in the public URL: the receiver checks the bearer token "
            "(BREVO_WEBHOOK_TOKEN), not Basic auth"
        )
    if parts.fragment:
        raise ValueError("the public URL must not have a #fragment")
    path = parts.path.rstrip("/")
    if not path.endswith(RECEIVER_PATH):
        path += RECEIVER_PATH
    return urlunsplit(parts._replace(path=path))


def create_body(spec: WebhookSpec, url: str, token: str) -> dict[str, object]:
    """The `POST /webhooks` body that registers `spec` at `url` with bearer auth."""
    return {
        "url": url,
        "description": spec.description,
        "events": list(spec.events),
        "type": spec.type,
        "channel": spec.channel,
        "auth": {"type": "bearer", "token": token},
    }


class DriftKind(StrEnum):
    """What can be wrong with the account's webhooks."""

    MISSING_WEBHOOK = "missing webhook"
    WRONG_URL = "wrong URL"
    MISSING_EVENTS = "missing events"
    NO_AUTH = "no auth"
    WRONG_TOKEN = "wrong token"  # noqa: S105 (the name of a drift, not a secret)
    DISABLED = "disabled"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Drift:
    """One thing wrong with the webhooks of one spec (`spec` is its name), and the webhooks concerned."""

    spec: str
    kind: DriftKind
    webhook_ids: tuple[str, ...]
    detail: str


@dataclass(frozen=True, slots=True)
class SpecAudit:
    """The account's webhooks for one spec: those at the receiver's URL, and ours that point elsewhere."""

    spec: WebhookSpec
    at_url: tuple[Webhook, ...]
    elsewhere: tuple[Webhook, ...]
    drifts: tuple[Drift, ...]

    @property
    def sound(self) -> Webhook | None:
        """A webhook at the receiver's URL with nothing wrong with it, if there is one."""
        wrong = {webhook_id for drift in self.drifts for webhook_id in drift.webhook_ids}
        return next((webhook for webhook in self.at_url if webhook.id not in wrong), None)


@dataclass(frozen=True, slots=True)
class Audit:
    """Every spec's audit, and the account's webhooks that are not this receiver's."""

    url: str
    specs: tuple[SpecAudit, ...]
    others: tuple[Webhook, ...]

    @property
    def drifts(self) -> tuple[Drift, ...]:
        """Everything wrong, spec by spec."""
        return tuple(drift for spec in self.specs for drift in spec.drifts)

    @property
    def clean(self) -> bool:
        """True when every spec has exactly one sound webhook and nothing else of ours is around."""
        return not self.drifts


def _is_ours(webhook: Webhook, url: str) -> bool:
    """At the receiver's URL, described as ours, or at another host's receiver path (an old deployment)."""
    return (
        normalize_url(webhook.url) == url
        or webhook.description.startswith(DESCRIPTION_PREFIX)
        or _parts(webhook.url).path.rstrip("/").endswith(RECEIVER_PATH)
    )


def _webhook_drifts(spec: WebhookSpec, webhook: Webhook, token: str | None) -> list[Drift]:
    ids = (webhook.id,)
    drifts: list[Drift] = []
    missing = missing_events(spec, webhook)
    if missing:
        lacks = f"webhook {webhook.id} lacks {', '.join(missing)}"
        drifts.append(Drift(spec.name, DriftKind.MISSING_EVENTS, ids, lacks))
    if not webhook.bearer:
        what = f"auth type {webhook.auth_type!r}" if webhook.auth_type else "no auth"
        drifts.append(
            Drift(
                spec.name,
                DriftKind.NO_AUTH,
                ids,
                f"webhook {webhook.id} has {what}: the receiver refuses its calls without the bearer token",
            )
        )
    elif token is not None and webhook.token is not None and webhook.token != token:
        drifts.append(
            Drift(
                spec.name,
                DriftKind.WRONG_TOKEN,
                ids,
                f"webhook {webhook.id} sends another bearer token than BREVO_WEBHOOK_TOKEN",
            )
        )
    if webhook.enabled is False:
        drifts.append(Drift(spec.name, DriftKind.DISABLED, ids, f"webhook {webhook.id} is disabled"))
    return drifts


def _audit_spec(spec: WebhookSpec, mine: Sequence[Webhook], url: str, token: str | None) -> SpecAudit:
    at_url = tuple(webhook for webhook in mine if normalize_url(webhook.url) == url)
    elsewhere = tuple(webhook for webhook in mine if normalize_url(webhook.url) != url)
    drifts = [
        Drift(
            spec.name,
            DriftKind.WRONG_URL,
            (webhook.id,),
            f"webhook {webhook.id} points at {redact(webhook.url)}",
        )
        for webhook in elsewhere
    ]
    if not mine:
        none = f"no {spec.type} webhook on channel {spec.channel}"
        drifts.append(Drift(spec.name, DriftKind.MISSING_WEBHOOK, (), none))
    for webhook in at_url:
        drifts.extend(_webhook_drifts(spec, webhook, token))
    if len(at_url) > 1:
        ids = tuple(webhook.id for webhook in at_url)
        drifts.append(
            Drift(
                spec.name,
                DriftKind.DUPLICATE,
                ids,
                f"webhooks {', '.join(ids)} all point here: Brevo sends each event {len(ids)} times",
            )
        )
    return SpecAudit(spec, at_url, elsewhere, tuple(drifts))


def audit(
    webhooks: Iterable[Webhook], url: str, token: str | None = None, specs: Sequence[WebhookSpec] = SPECS
) -> Audit:
    """How the account's webhooks drift from `specs` at `url`; `token`, when given, is compared if listed.

    A webhook is the receiver's when it is of a spec's type and channel and either points at `url`, is
    described as `tajo-events: ...`, or points at another host's `/webhooks/brevo` (a moved receiver).
    """
    target = normalize_url(url)
    listed = list(webhooks)
    audits: list[SpecAudit] = []
    claimed: set[str] = set()
    for spec in specs:
        mine = [
            webhook
            for webhook in listed
            if webhook.type == spec.type and webhook.channel == spec.channel and _is_ours(webhook, target)
        ]
        claimed.update(webhook.id for webhook in mine)
        audits.append(_audit_spec(spec, mine, target, token))
    others = tuple(webhook for webhook in listed if webhook.id not in claimed)
    return Audit(url, tuple(audits), others)


def render(result: Audit) -> str:
    """A readable report: each spec's state and drifts, then the account's other webhooks, then a verdict."""
    lines = [f"Brevo webhooks for {result.url}"]
    for spec_audit in result.specs:
        spec = spec_audit.spec
        sound = spec_audit.sound
        state = f"ok (webhook {sound.id})" if sound is not None and not spec_audit.drifts else "DRIFT"
        lines.append(f"  {spec.name} ({spec.type}, channel {spec.channel}): {state}")
        lines.extend(f"    - {drift.kind}: {drift.detail}" for drift in spec_audit.drifts)
    if result.others:
        lines.append(f"  other webhooks, not this receiver's (left alone): {len(result.others)}")
        lines.extend(
            f"    - webhook {webhook.id} ({webhook.type}, {webhook.channel}) -> {redact(webhook.url)}"
            for webhook in result.others
        )
    drifts = result.drifts
    if drifts:
        kinds = sorted({str(drift.kind) for drift in drifts})
        lines.append(f"{len(drifts)} problem(s): {', '.join(kinds)}")
    else:
        lines.append("clean: every webhook is registered once, with its events and bearer auth")
    return "\n".join(lines) + "\n"
