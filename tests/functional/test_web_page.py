"""The page, in a real headless Chromium (Debian's `chromium`, driven by Playwright), over a real `serve`.

The server is fed by signed webhooks; the page's counters, card, timeline and rates are read as a person
sees them and checked against what was posted and what the API answers. Each view is saved as a
screenshot at a desktop and a phone width in `build/screenshots/` (printed at the end).
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from playwright.sync_api import Browser, Page, Playwright, Route, expect, sync_playwright

from ingest.auth import sign
from tests.conftest import SCREENSHOTS as SCREENSHOTS_SAID
from tests.payloads import Raw, brevo_sms, seed_email
from tests.processes import free_port

SECRET = b"page-webhook-secret"  # a throw-away secret of a throw-away server
TOKEN = "page-api-token"
SILENCE_ALERT_S = 20
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
T0 = 1640995200
T = TypeVar("T")
# The machine running the suite may be busy (brokers, other suites): a view waits up to this long.
expect.set_options(timeout=30_000)

JANE = "jane@example.com"
JANE_PHONE = "+33612345678"
# (body, the canonical types its events become): what the overview must count
POSTS: list[tuple[Raw, list[str]]] = [
    (
        seed_email("delivered", JANE, camp_id=45, **{"campaign name": "Winter Sale", "message-id": "m1"}),
        ["email.delivered"],
    ),
    (seed_email("opened", JANE, camp_id=45, ts=T0 + 60, **{"message-id": "m1"}), ["email.opened"]),
    (
        seed_email(
            "clicked",
            JANE,
            camp_id=45,
            ts=T0 + 120,
            link="https://shop.example.com/rewards",
            **{"message-id": "m1"},
        ),
        ["email.clicked"],
    ),
    (
        {
            "event": "contact_updated",
            "email": JANE,
            "attributes": {"SMS": JANE_PHONE},
            "list_id": [3, 7],
            "ts": T0 + 180,
        },
        ["contact.updated", "contact.linked"],
    ),
    (brevo_sms("delivered", to=JANE_PHONE.removeprefix("+"), ts=T0 + 240), ["sms.delivered"]),
    (seed_email("delivered", "bob@example.com", camp_id=45, **{"message-id": "m2"}), ["email.delivered"]),
    (seed_email("spam", "bob@example.com", camp_id=45, ts=T0 + 300, **{"message-id": "m2"}), ["email.spam"]),
    (seed_email("delivered", "carl@example.com", camp_id=46, **{"message-id": "m3"}), ["email.delivered"]),
    (
        seed_email(
            "hard_bounced",
            "carl@example.com",
            camp_id=46,
            ts=T0 + 400,
            reason="mailbox unknown",
            **{"message-id": "m3"},
        ),
        ["email.hard_bounced"],
    ),
    (
        {"event": "sms_reply", "phone": "+33699999999", "text": "Where is my order?", "ts": T0 + 500},
        ["sms.replied"],
    ),
    ({"event": "mystery_event", "email": JANE, "ts": T0 + 600}, ["unknown"]),
]


def _until(probe: Callable[[], T], accept: Callable[[T], bool], within: float = 60.0) -> T:
    """Polls `probe` until `accept` holds of its result; fails with the last one after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = probe()
        if accept(result):
            return result
        assert time.monotonic() < deadline, f"not reached within {within}s: {result!r}"
        time.sleep(0.2)  # a poll, bounded by the deadline


class Serve:
    """`tajo-events serve` on the embedded log, in its own process group."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BREVO_", "TAJO_", "KAFKA_"))}
        env |= {
            "BREVO_WEBHOOK_SECRET": SECRET.decode(),
            "TAJO_API_TOKEN": TOKEN,
            "TAJO_DATA_DIR": str(data_dir),
            "TAJO_SILENCE_ALERT_S": str(SILENCE_ALERT_S),
            "TAJO_ACCESS_LOG": "true",
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tajo_events.cli", "serve", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _until(
            self.log_path.read_bytes,
            lambda out: b"listening on" in out or self.process.poll() is not None,
        )
        assert self.process.poll() is None, self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)

    def post(self, body: object) -> Any:
        data = orjson.dumps(body)
        headers = {"Content-Type": "application/json", "X-Brevo-Signature": sign(SECRET, data)}
        request = urllib.request.Request(  # noqa: S310 - a local test server
            f"{self.base}/webhooks/brevo", data=data, headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - a local test server
            assert response.status == 200
            return orjson.loads(response.read())

    def api(self, path: str) -> Any:
        request = urllib.request.Request(  # noqa: S310 - a local test server
            f"{self.base}/api{path}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - a local test server
                return orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            error.close()
            if error.code == 404:
                return None
            raise


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    server = Serve(tmp_path_factory.mktemp("page"))
    try:
        for body, _ in POSTS:
            server.post(body)
        expected = sum(len(types) for _, types in POSTS)
        _until(lambda: server.api("/overview"), lambda o: o["fold"][0]["folded"] == expected)
        _until(lambda: server.api("/overview"), lambda o: sum(o["totals"].values()) == expected)
        yield server
        log = server.log_path.read_text()
        assert "Traceback" not in log, log[-4000:]
        assert TOKEN not in log  # the token never reaches a log line (the page sends it as a header)
    finally:
        server.stop()


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright, request: pytest.FixtureRequest) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    request.config.stash[SCREENSHOTS_SAID] = str(SCREENSHOTS)  # printed at the end of the run
    yield chromium
    chromium.close()


@pytest.fixture(params=list(WIDTHS), ids=list(WIDTHS))
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    width, height = WIDTHS[request.param]
    context = browser.new_context(viewport={"width": width, "height": height}, service_workers="block")
    tab = context.new_page()
    tab.width_name = request.param  # type: ignore[attr-defined]
    yield tab
    context.close()


def _shoot(page: Page, view: str) -> None:
    page.screenshot(path=SCREENSHOTS / f"{view}-{page.width_name}.png", full_page=True)  # type: ignore[attr-defined]


def _sign_in(page: Page, serve: Serve, token: str = TOKEN) -> None:
    page.goto(serve.base + "/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Open").click()


def _cell(page: Page, table: str, row: str, column: int) -> str:
    return page.locator(f"#{table} tbody tr{row} td").nth(column).inner_text()


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def test_overview_counts_what_was_posted(serve: Serve, page: Page) -> None:
    _sign_in(page, serve)
    expect(page.locator("#last-hour")).to_be_visible()
    posted = Counter(kind for _, types in POSTS for kind in types)
    shown = {
        row.get_attribute("data-type"): int(row.locator("td").nth(1).inner_text().replace(",", ""))
        for row in page.locator("#last-hour tbody tr").all()
    }
    assert shown == dict(posted)
    assert _cell(page, "unknown-names", '[data-name="mystery_event"]', 1) == "1"
    assert _cell(page, "fold-lag", '[data-partition="0"]', 3) == "0"
    assert page.locator('[data-service="ingester"] .badge').inner_text() == "ok"
    expect(page.locator('[data-field="last_event_at"]')).to_contain_text("UTC")
    assert page.locator("svg rect").count() >= len(posted)  # the chart: a bar part per type this minute
    _shoot(page, "overview")


def test_customer_search_shows_the_card_and_the_timeline(serve: Serve, page: Page) -> None:
    _sign_in(page, serve)
    page.get_by_role("link", name="Customer").click()
    page.get_by_label("Email or phone").fill("Jane@Example.com")
    page.get_by_role("button", name="Search").click()
    card = page.locator("#loyalty-card")
    expect(card).to_be_visible()
    view = serve.api(f"/customers/{JANE}")

    def field(name: str) -> str:
        return card.locator(f'[data-field="{name}"]').inner_text()

    assert field("tier") == view["tier"] == "bronze"
    assert field("score") == str(view["engagement_score"]) == "6"
    assert field("preferred_channel") == "email"
    assert field("email_status") == "active"
    assert field("sms_status") == "ok"
    assert field("consent") == "yes"
    assert field("rewards_visits") == "1"
    assert field("lists") == "3, 7"
    assert field("phone") == JANE_PHONE
    timeline = serve.api(f"/customers/{JANE}/timeline")
    rows = page.locator("#timeline tbody tr")
    assert [r.get_attribute("data-event") for r in rows.all()] == [e["event_id"] for e in timeline["events"]]
    shown = [r.locator("td").nth(1).inner_text() for r in rows.all()]
    # newest first, the phone's SMS and link events included; the contact event and the link it made
    # share a time (T0 + 180), so between them the event id decides
    assert shown[:2] == ["unknown", "sms.delivered"]
    assert sorted(shown[2:4]) == ["contact.linked", "contact.updated"]
    assert shown[4:] == ["email.clicked", "email.opened", "email.delivered"]
    clicked = page.locator("#timeline tbody tr", has_text="email.clicked")
    expect(clicked).to_contain_text("https://shop.example.com/rewards")
    expect(clicked).to_contain_text("45")
    _shoot(page, "customer")


def test_campaign_rates_match_the_api(serve: Serve, page: Page) -> None:
    _sign_in(page, serve)
    page.get_by_role("link", name="Campaigns").click()
    row = '[data-key="45"]'
    expect(page.locator(f"#campaigns tbody tr{row}")).to_be_visible()
    stats = serve.api("/campaigns/45")
    columns = {"delivered": 3, "open_rate": 4, "click_rate": 5, "spam": 7}
    assert _cell(page, "campaigns", row, columns["delivered"]) == str(stats["delivered"]) == "2"
    assert _cell(page, "campaigns", row, columns["open_rate"]) == _pct(stats["open_rate"]) == "50.0%"
    assert _cell(page, "campaigns", row, columns["click_rate"]) == _pct(stats["click_rate"]) == "50.0%"
    assert _cell(page, "campaigns", row, columns["spam"]) == str(stats["spam"]) == "1"
    page.get_by_role("button", name="Delivered").click()
    page.get_by_role("button", name="Delivered").click()  # descending
    keys = [r.get_attribute("data-key") for r in page.locator("#campaigns tbody tr").all()]
    delivered = {c["key"]: c["delivered"] for c in serve.api("/campaigns")["campaigns"]}
    assert [delivered[k] for k in keys if k] == sorted(delivered.values(), reverse=True)
    _shoot(page, "campaigns")
    page.get_by_role("link", name="45", exact=True).click()
    card = page.locator("#campaign-card")
    expect(card).to_be_visible()
    assert card.locator('[data-field="open_rate"]').inner_text() == _pct(stats["open_rate"])
    assert card.locator('[data-field="click_rate"]').inner_text() == _pct(stats["click_rate"])
    assert card.locator('[data-field="delivered"]').inner_text() == "2"
    _shoot(page, "campaign")


def test_the_feeds_show_suppressions_alerts_and_the_inbox(serve: Serve, page: Page) -> None:
    _sign_in(page, serve)
    page.get_by_role("link", name="Suppressions").click()
    expect(page.locator("#suppressions")).to_contain_text("carl@example.com")
    expect(page.locator("#suppressions")).to_contain_text("mailbox unknown")
    _shoot(page, "suppressions")
    page.get_by_role("link", name="Alerts").click()
    expect(page.locator("#alerts")).to_contain_text("bob@example.com")
    _shoot(page, "alerts")
    page.get_by_role("link", name="Support inbox").click()
    expect(page.locator("#messages")).to_contain_text("Where is my order?")
    _shoot(page, "inbox")
    page.get_by_role("button", name="+33699999999").click()  # a feed's address opens its customer
    expect(page.locator("#loyalty-card")).to_contain_text("+33699999999")


def test_a_wrong_token_shows_the_error_and_no_data(serve: Serve, page: Page) -> None:
    _sign_in(page, serve, token="not-the-token")  # noqa: S106 - a wrong token, on purpose
    expect(page.get_by_role("alert")).to_contain_text("refused this token")
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.locator("#last-hour").count() == 0
    assert page.evaluate("sessionStorage.length") == 0  # a refused token is not kept
    _shoot(page, "wrong-token")


def test_the_page_says_when_the_api_cannot_be_reached(serve: Serve, page: Page) -> None:
    page.route("**/api/**", lambda route: route.abort("connectionrefused"))
    _sign_in(page, serve)
    expect(page.get_by_role("alert")).to_contain_text("The API cannot be reached")


def test_nothing_is_readable_without_the_token(serve: Serve) -> None:
    for path in ("/overview", "/customers/jane@example.com/timeline"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{serve.base}/api{path}", timeout=30)  # noqa: S310 - a local test server
        refused.value.close()
        assert refused.value.code == 401
    with urllib.request.urlopen(f"{serve.base}/", timeout=30) as response:  # noqa: S310 - a local test server
        html = response.read().decode()
    assert JANE not in html  # the page itself is static: no data in it


def test_the_overview_warns_once_brevo_is_silent(serve: Serve, page: Page) -> None:
    _sign_in(page, serve)
    expect(page.locator("#last-hour")).to_be_visible()

    def warned() -> bool:
        page.reload()
        page.locator("#last-hour").wait_for()
        return page.locator("#brevo-silent").count() == 1

    _until(warned, bool, within=SILENCE_ALERT_S + 30)
    expect(page.locator("#brevo-silent")).to_contain_text("Brevo has been silent")
    _shoot(page, "overview-silent")


def test_a_late_answer_never_replaces_the_view_the_user_moved_to(serve: Serve, page: Page) -> None:
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)  # the overview's answer waits until released

    page.route("**/api/overview", hold)
    _sign_in(page, serve)

    def held_count() -> int:
        page.evaluate("0")  # a round trip: Playwright hands intercepted requests over during its calls
        return len(held)

    _until(held_count, lambda n: n == 1)
    page.get_by_role("link", name="Suppressions").click()
    expect(page.locator("#suppressions")).to_be_visible()
    with page.expect_response("**/api/overview"):
        held[0].continue_()
    page.evaluate("() => fetch('/').then((answer) => answer.text())")  # a round trip after the late one
    expect(page.locator("#suppressions")).to_be_visible()
    assert page.locator("#last-hour").count() == 0
    assert page.get_by_role("link", name="Suppressions").get_attribute("aria-current") == "page"
