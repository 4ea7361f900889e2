"""`tajo-events webhooks register|audit` against a fake Brevo over HTTP, and `tajo-events signature`."""

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ingest.auth import sign
from tajo_events.cli import main
from tajo_events.webhooks_drift import SPECS, create_body
from tests.fakes.brevo_server import FakeBrevo

API_KEY = "xkeysib-webhooks-admin-TESTKEY"
TOKEN = "bearer-token-for-brevo-calls"
PUBLIC = "https://tajo.example.com"
URL = f"{PUBLIC}/webhooks/brevo"
SECRET = "change-me"
BODY = b'{"event":"delivered","email":"jane@example.com","message-id":"test-123","ts":1640995200}'


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("BREVO_", "TAJO_", "KAFKA_")):
            monkeypatch.delenv(name)


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBrevo]:
    async with FakeBrevo(api_key=API_KEY) as server:
        monkeypatch.setenv("BREVO_API_KEY", API_KEY)
        monkeypatch.setenv("BREVO_API_BASE_URL", server.base_url)
        monkeypatch.setenv("BREVO_WEBHOOK_TOKEN", TOKEN)
        monkeypatch.setenv("TAJO_PUBLIC_URL", PUBLIC)
        yield server


async def tajo(*args: str) -> int:
    """Runs the command in-process, in a thread: it runs its own event loop while the fake serves on ours."""
    return await asyncio.to_thread(main, list(args))


def posts(fake: FakeBrevo) -> list[dict[str, object]]:
    bodies = [request.json for request in fake.requests_to("/webhooks") if request.method == "POST"]
    return [body for body in bodies if isinstance(body, dict)]


def seed_registered(fake: FakeBrevo, skip: str = "", **changes: dict[str, object]) -> dict[str, str]:
    """Puts the three webhooks register would create in the account, `changes[name]` applied; their ids."""
    return {
        spec.name: fake.add_webhook(**{**create_body(spec, URL, TOKEN), **changes.get(spec.name, {})})
        for spec in SPECS
        if spec.name != skip
    }


async def test_register_creates_the_three_webhooks_with_their_events_and_bearer_auth(
    fake: FakeBrevo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await tajo("webhooks", "register") == 0

    created = {(hook["type"], hook["channel"]): hook for hook in fake.webhooks}
    assert set(created) == {("transactional", "email"), ("marketing", "email"), ("transactional", "sms")}
    for hook in created.values():
        assert hook["url"] == URL
        assert hook["auth"] == {"type": "bearer", "token": TOKEN}
    events = {kind: set(hook["events"]) for kind, hook in created.items() if isinstance(hook["events"], list)}
    assert {"request", "delivered", "hardBounce", "uniqueOpened", "click"} <= events["transactional", "email"]
    assert {"delivered", "opened", "hardBounce", "listAddition"} <= events["marketing", "email"]
    assert {"delivered", "hardBounce", "reply"} <= events["transactional", "sms"]
    assert not {"hard_bounce", "clicked", "sms_delivered"} & set().union(*events.values())
    assert all(request.headers["api-key"] == API_KEY for request in fake.requests)
    out = capsys.readouterr().out
    assert out.count("created webhook") == 3
    assert TOKEN not in out


async def test_a_second_register_creates_nothing(fake: FakeBrevo, capsys: pytest.CaptureFixture[str]) -> None:
    assert await tajo("webhooks", "register") == 0
    assert await tajo("webhooks", "register") == 0

    assert len(posts(fake)) == 3
    assert len(fake.webhooks) == 3
    assert capsys.readouterr().out.count("already registered") == 3


async def test_register_adds_only_what_is_missing_and_leaves_a_drifted_one_alone(
    fake: FakeBrevo, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_registered(fake, skip="sms", marketing={"auth": None})

    assert await tajo("webhooks", "register") == 1

    assert [(body["type"], body["channel"]) for body in posts(fake)] == [("transactional", "sms")]
    out = capsys.readouterr().out
    assert "marketing (marketing, channel email): webhook 2 is there but drifted" in out
    assert "no auth" in out


async def test_register_without_a_bearer_token_refuses(
    fake: FakeBrevo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BREVO_WEBHOOK_TOKEN")
    assert await tajo("webhooks", "register") == 2
    assert "BREVO_WEBHOOK_TOKEN" in capsys.readouterr().err
    assert fake.requests == []


async def test_audit_after_register_is_clean(fake: FakeBrevo, capsys: pytest.CaptureFixture[str]) -> None:
    assert await tajo("webhooks", "register") == 0
    fake.add_webhook(url="https://crm.example.org/hook", events=["delivered"], description="CRM")

    assert await tajo("webhooks", "audit") == 0

    out = capsys.readouterr().out
    assert "clean" in out
    assert "crm.example.org" in out  # listed as another integration's, not as drift
    queried = {
        request.query.get("type") for request in fake.requests_to("/webhooks") if request.method == "GET"
    }
    assert queried == {"transactional", "marketing"}


async def test_audit_names_each_drift_and_exits_non_zero(
    fake: FakeBrevo, capsys: pytest.CaptureFixture[str]
) -> None:
    transactional = next(spec for spec in SPECS if spec.name == "transactional")
    ids = seed_registered(
        fake,
        transactional={"events": [event for event in transactional.events if event != "hardBounce"]},
        marketing={"url": "https://old-host.example.com/webhooks/brevo"},
        sms={"auth": None},
    )
    twin = fake.add_webhook(**create_body(transactional, URL, TOKEN))

    assert await tajo("webhooks", "audit", "--url", PUBLIC) == 1

    out = capsys.readouterr().out
    assert f"missing events: webhook {ids['transactional']} lacks hardBounce" in out
    assert (
        f"wrong URL: webhook {ids['marketing']} points at https://old-host.example.com/webhooks/brevo" in out
    )
    assert f"no auth: webhook {ids['sms']} has no auth" in out
    assert f"duplicate: webhooks {ids['transactional']}, {twin} all point here" in out
    assert TOKEN not in out
    assert posts(fake) == []  # an audit changes nothing


@pytest.mark.usefixtures("fake")
async def test_audit_of_an_empty_account_names_the_three_missing_webhooks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await tajo("webhooks", "audit") == 1
    assert capsys.readouterr().out.count("- missing webhook: ") == 3


@pytest.mark.usefixtures("fake")
async def test_a_refused_api_key_is_said_with_exit_status_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BREVO_API_KEY", "wrong-key")
    assert await tajo("webhooks", "audit") == 2
    err = capsys.readouterr().err
    assert "GET /webhooks answered 401" in err
    assert "wrong-key" not in err


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"TAJO_PUBLIC_URL": ""}, "TAJO_PUBLIC_URL"),
        ({"TAJO_PUBLIC_URL": "http://tajo.example.com"}, "https://"),
        ({"BREVO_API_KEY": ""}, "BREVO_API_KEY"),
    ],
    ids=["no-url", "not-https", "no-api-key"],
)
async def test_missing_or_unsafe_settings_are_named_with_exit_status_2(
    fake: FakeBrevo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    said: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert await tajo("webhooks", "audit") == 2
    assert said in capsys.readouterr().err
    assert fake.requests == []


@pytest.fixture
def body_file(tmp_path: Path) -> Path:
    path = tmp_path / "body.json"
    path.write_bytes(BODY)
    return path


def test_signature_shows_the_seed_signature_of_the_body(
    body_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BREVO_WEBHOOK_SECRET", SECRET)
    assert main(["signature", "--body", str(body_file)]) == 0
    out = capsys.readouterr().out
    assert f"X-Brevo-Signature: {sign(SECRET.encode(), BODY)}" in out
    assert f"({len(BODY)} bytes)" in out
    assert SECRET not in out


@pytest.mark.parametrize(
    "header",
    [
        sign(SECRET.encode(), BODY),
        sign(SECRET.encode(), BODY).removeprefix("sha256="),
        f"X-Brevo-Signature: {sign(SECRET.encode(), BODY)}",
    ],
    ids=["prefixed", "bare-hex", "whole-header-line"],
)
def test_signature_says_a_matching_header_matches(
    header: str, body_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BREVO_WEBHOOK_SECRET", SECRET)
    assert main(["signature", "--body", str(body_file), "--header", header]) == 0
    assert "match:     yes" in capsys.readouterr().out


def test_signature_says_a_wrong_header_does_not_match_with_exit_1(
    body_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    wrong = sign(b"another-secret", BODY)
    assert (
        main(["signature", "--body", str(body_file), "--secret-file", str(secret_file), "--header", wrong])
        == 1
    )
    out = capsys.readouterr().out
    assert "match:     NO" in out
    assert "a different secret" in out


def test_signature_spots_a_body_file_that_gained_a_final_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BREVO_WEBHOOK_SECRET", SECRET)
    saved = tmp_path / "saved.json"
    saved.write_bytes(BODY + b"\n")
    assert main(["signature", "--body", str(saved), "--header", sign(SECRET.encode(), BODY)]) == 1
    assert "without its final newline" in capsys.readouterr().out


def test_a_secret_on_the_command_line_works_with_a_warning(
    body_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = sign(SECRET.encode(), BODY)
    assert main(["signature", "--body", str(body_file), "--secret", SECRET, "--header", header]) == 0
    assert "visible to other users" in capsys.readouterr().err


def test_signature_without_a_secret_says_where_to_put_one(
    body_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["signature", "--body", str(body_file)]) == 2
    assert "BREVO_WEBHOOK_SECRET" in capsys.readouterr().err


def test_the_help_prefers_the_environment_or_a_file_for_the_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["signature", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "BREVO_WEBHOOK_SECRET" in text
    assert "--secret-file" in text
    assert "ps" in text
