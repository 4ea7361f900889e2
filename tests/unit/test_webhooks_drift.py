"""The webhook drift rules: what the receiver needs from Brevo, and each way the account can differ."""

import pytest

from schemas.event_types import EMAIL_NAMES, SMS_NAMES
from tajo_events.webhooks_drift import (
    SPECS,
    DriftKind,
    Webhook,
    WebhookSpec,
    audit,
    create_body,
    missing_events,
    normalize_url,
    receiver_url,
    render,
    webhook_from_api,
)

URL = "https://tajo.example.com/webhooks/brevo"
TOKEN = "s3cret-bearer-token"
SPEC = {spec.name: spec for spec in SPECS}


def registered(spec: WebhookSpec, webhook_id: str, **changes: object) -> Webhook:
    """The webhook `register` creates for `spec`, as Brevo lists it, with `changes` applied."""
    raw: dict[str, object] = {"id": webhook_id, **create_body(spec, URL, TOKEN), **changes}
    return webhook_from_api(raw, spec.type)


def all_registered() -> list[Webhook]:
    return [registered(spec, str(number)) for number, spec in enumerate(SPECS, start=1)]


def kinds(webhooks: list[Webhook], token: str | None = TOKEN) -> list[tuple[str, DriftKind]]:
    return [(drift.spec, drift.kind) for drift in audit(webhooks, URL, token).drifts]


def test_the_three_webhooks_subscribe_with_brevo_names_not_payload_names() -> None:
    assert [(spec.name, spec.type, spec.channel) for spec in SPECS] == [
        ("transactional", "transactional", "email"),
        ("marketing", "marketing", "email"),
        ("sms", "transactional", "sms"),
    ]
    email = set(SPEC["transactional"].events) | set(SPEC["marketing"].events)
    assert {"hardBounce", "softBounce", "uniqueOpened", "invalid", "click", "request"} <= email
    assert not email & {"hard_bounce", "soft_bounce", "unique_opened", "invalid_email", "clicked", "bounced"}
    assert {"delivered", "softBounce", "hardBounce", "reply"} <= set(SPEC["sms"].events)
    assert not set(SPEC["sms"].events) & {"sms_delivered", "sms_failed", "sms_reply"}


# BREVO.md section 2: what each subscription arrives as in the payload (SMS: as `msg_status`).
ARRIVES_AS = {
    "request": "request",
    "uniqueOpened": "unique_opened",
    "softBounce": "soft_bounce",
    "hardBounce": "hard_bounce",
    "invalid": "invalid_email",
    "listAddition": "list_addition",
    "contactUpdated": "contact_updated",
    "contactDeleted": "contact_deleted",
}


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_every_subscription_arrives_as_a_name_the_fold_maps(spec: WebhookSpec) -> None:
    names = SMS_NAMES if spec.channel == "sms" else EMAIL_NAMES
    unmapped = [event for event in spec.events if ARRIVES_AS.get(event, event) not in names]
    assert unmapped == []


def test_the_create_body_asks_for_bearer_auth_with_the_token() -> None:
    body = create_body(SPEC["sms"], URL, TOKEN)
    assert body["auth"] == {"type": "bearer", "token": TOKEN}
    assert (body["type"], body["channel"], body["url"]) == ("transactional", "sms", URL)
    assert str(body["description"]).startswith("tajo-events")


def test_the_webhooks_register_creates_audit_clean() -> None:
    result = audit(all_registered(), URL, TOKEN)
    assert result.clean
    assert [spec_audit.sound.id for spec_audit in result.specs if spec_audit.sound] == ["1", "2", "3"]
    assert render(result).splitlines()[-1].startswith("clean")


def test_an_empty_account_misses_every_webhook() -> None:
    assert kinds([]) == [(spec.name, DriftKind.MISSING_WEBHOOK) for spec in SPECS]


def test_a_missing_event_is_named() -> None:
    events = [event for event in SPEC["transactional"].events if event != "hardBounce"]
    webhooks = [registered(SPEC["transactional"], "1", events=events), *all_registered()[1:]]
    result = audit(webhooks, URL, TOKEN)
    assert [(drift.kind, drift.detail) for drift in result.drifts] == [
        (DriftKind.MISSING_EVENTS, "webhook 1 lacks hardBounce")
    ]


def test_payload_spellings_and_sent_count_as_the_subscription() -> None:
    events = ["sent" if event == "request" else event for event in SPEC["transactional"].events]
    events = ["hard_bounce" if event == "hardBounce" else event for event in events]
    assert missing_events(SPEC["transactional"], registered(SPEC["transactional"], "1", events=events)) == []


def test_a_webhook_of_ours_at_another_url_is_a_wrong_url() -> None:
    moved = registered(SPEC["marketing"], "2", url="https://old-host.example.com/webhooks/brevo")
    webhooks = [all_registered()[0], moved, all_registered()[2]]
    drifts = audit(webhooks, URL, TOKEN).drifts
    assert [(drift.spec, drift.kind, drift.webhook_ids) for drift in drifts] == [
        ("marketing", DriftKind.WRONG_URL, ("2",))
    ]
    assert "old-host.example.com" in drifts[0].detail


def test_a_hand_made_webhook_at_our_path_elsewhere_is_ours_too() -> None:
    raw = {
        "id": 9,
        "url": "https://old.example.com/webhooks/brevo/",
        "events": ["delivered"],
        "type": "marketing",
    }
    webhooks = [*all_registered(), webhook_from_api(raw, "marketing")]
    assert kinds(webhooks) == [("marketing", DriftKind.WRONG_URL)]


def test_no_auth_basic_auth_and_a_wrong_token_are_named() -> None:
    no_auth = registered(SPEC["sms"], "3", auth=None)
    assert kinds([*all_registered()[:2], no_auth]) == [("sms", DriftKind.NO_AUTH)]
    basic = registered(SPEC["sms"], "3", auth={"type": "basic"})
    assert kinds([*all_registered()[:2], basic]) == [("sms", DriftKind.NO_AUTH)]
    other = registered(SPEC["sms"], "3", auth={"type": "bearer", "token": "another"})
    assert kinds([*all_registered()[:2], other]) == [("sms", DriftKind.WRONG_TOKEN)]
    assert kinds([*all_registered()[:2], other], token=None) == []


def test_a_masked_token_or_a_static_authorization_header_is_bearer_auth() -> None:
    masked = registered(SPEC["sms"], "3", auth={"type": "bearer"})
    header = registered(
        SPEC["sms"], "3", auth=None, headers=[{"key": "Authorization", "value": f"Bearer {TOKEN}"}]
    )
    assert kinds([*all_registered()[:2], masked]) == []
    assert kinds([*all_registered()[:2], header]) == []


def test_two_webhooks_at_our_url_are_a_duplicate() -> None:
    twin = registered(SPEC["transactional"], "7")
    result = audit([*all_registered(), twin], URL, TOKEN)
    assert [(drift.spec, drift.kind, drift.webhook_ids) for drift in result.drifts] == [
        ("transactional", DriftKind.DUPLICATE, ("1", "7"))
    ]
    assert result.specs[0].sound is None


def test_a_disabled_webhook_is_named() -> None:
    disabled = registered(SPEC["marketing"], "2", is_enabled=False)
    assert kinds([all_registered()[0], disabled, all_registered()[2]]) == [("marketing", DriftKind.DISABLED)]


def test_other_integrations_webhooks_are_left_out_of_the_drift() -> None:
    raw = {"id": 50, "url": "https://crm.example.org/hooks", "events": ["delivered"], "description": "CRM"}
    result = audit([*all_registered(), webhook_from_api(raw, "transactional")], URL, TOKEN)
    assert result.clean
    assert [webhook.id for webhook in result.others] == ["50"]
    assert "crm.example.org" in render(result)


def test_a_listing_without_channel_tells_sms_webhooks_by_their_events() -> None:
    raw = {"id": 3, "url": URL, "events": ["sent", "delivered", "reply"], "type": "transactional"}
    assert webhook_from_api(raw, "transactional").channel == "sms"
    raw = {"id": 1, "url": URL, "events": ["delivered", "opened"]}
    assert webhook_from_api(raw, "transactional").channel == "email"


def test_the_report_names_every_drift_and_never_the_token() -> None:
    webhooks = [
        registered(SPEC["transactional"], "1", events=["delivered"]),
        registered(SPEC["transactional"], "4"),
        registered(SPEC["marketing"], "2", url="https://user:pw@old.example.com/webhooks/brevo"),
        registered(SPEC["sms"], "3", auth={"type": "bearer", "token": "leaked-old-token"}),
    ]
    report = render(audit(webhooks, URL, TOKEN))
    for kind in ("missing events", "duplicate", "wrong URL", "wrong token"):
        assert kind in report
    assert TOKEN not in report
    assert "leaked-old-token" not in report
    assert "pw@" not in report


@pytest.mark.parametrize(
    ("public", "expected"),
    [
        ("https://tajo.example.com", URL),
        ("https://tajo.example.com/", URL),
        ("https://tajo.example.com/webhooks/brevo", URL),
        ("https://tajo.example.com/tajo/", "https://tajo.example.com/tajo/webhooks/brevo"),
    ],
)
def test_the_receiver_url_is_the_public_url_and_the_webhook_path(public: str, expected: str) -> None:
    assert receiver_url(public) == expected


@pytest.mark.parametrize(
    "public", ["http://tajo.example.com", "https://user:pw@tajo.example.com", "tajo.example.com", "https://"]
)
def test_a_public_url_brevo_should_not_get_is_refused(public: str) -> None:
    with pytest.raises(ValueError, match="public URL"):
        receiver_url(public)


def test_urls_compare_without_case_default_port_credentials_or_final_slash() -> None:
    assert normalize_url("HTTPS://Tajo.Example.com:443/webhooks/brevo/") == URL
    assert normalize_url("https://u:p@tajo.example.com/webhooks/brevo") == URL
    assert normalize_url("https://tajo.example.com:8443/webhooks/brevo") != URL
