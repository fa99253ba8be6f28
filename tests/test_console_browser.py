"""The local console in headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Set up with tests/browser_setup.sh. Skipped, saying why, when the browser or Playwright is missing.
INCIDENTBOT_SCREENSHOTS=1 writes docs/screenshots/console.png and hypothesis.png.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.test_console import AUTH, EVIL, console_service, ingest, sim_events  # noqa: F401 - fixture

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("INCIDENTBOT_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; see tests/browser_setup.sh)")
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; see tests/browser_setup.sh)")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as exc:  # noqa: BLE001
            pytest.skip(f"Chromium did not start: {exc}")
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    ctx.close()


def feed(page):
    return page.locator("#feed")


def send(page, text: str):
    page.fill("#command-input", text)
    page.press("#command-input", "Enter")


def test_slash_command_reply_shows(console_service, page):
    from playwright.sync_api import expect

    page.goto(f"{console_service.url}/?user=alice")
    expect(page.locator("#user-select")).to_have_value("alice")
    send(page, "/incident list")
    reply = page.locator(".msg.ephemeral", has_text="No open hypotheses")
    expect(reply).to_be_visible(timeout=15000)
    expect(reply.locator(".only-you")).to_have_text("Only visible to you")
    expect(page.locator("#command-input")).to_have_value("")


def test_alert_appears_live_and_failure_text_stays_text(console_service, page):
    from playwright.sync_api import expect

    page.goto(f"{console_service.url}/?user=bob")
    expect(page.locator("#feed")).to_contain_text("Nothing in #incidents yet")
    ev = dict(sim_events(1)[0], event_id="evil-1", job_id="job-evil", message=EVIL)
    ingest(console_service, [ev])  # no reload: the page updates by long-polling
    alert = page.locator(".msg", has=page.locator(".block.header", has_text="S-"))
    expect(alert.first).to_be_visible(timeout=40000)
    expect(feed(page)).to_contain_text("<script>alert(1)</script>", timeout=30000)
    assert page.locator("#feed script").count() == 0 and page.locator("#feed img").count() == 0
    assert page.dialogs == []


def test_vote_button_changes_tally(console_service, page):
    from playwright.sync_api import expect

    ingest(console_service, sim_events())
    assert httpx.post(f"{console_service.url}/v1/analyze", headers=AUTH, timeout=60).json()["created"]
    page.goto(f"{console_service.url}/?user=alice")
    send(page, "/incident vote")
    poll = page.locator(".msg", has=page.locator(".block.header", has_text="P-1"))
    expect(poll).to_be_visible(timeout=20000)
    expect(poll.locator(".block.context").last).to_contain_text("0 votes")
    poll.locator("button[data-action='ib:vote']").first.click()
    expect(poll.locator(".block.context").last).to_contain_text("1 vote", timeout=20000)
    expect(page.locator(".msg.ephemeral", has_text="Your vote")).to_be_visible(timeout=10000)
    # bob sees the same poll, and not alice's private confirmation
    page.select_option("#user-select", "bob")
    page.wait_for_url("**user=bob**")
    expect(poll).to_be_visible()
    assert page.locator(".msg.ephemeral", has_text="Your vote").count() == 0
    shots(console_service, page)


def test_hypothesis_page_chart(console_service, page):
    from playwright.sync_api import expect

    ingest(console_service, sim_events())
    hid = httpx.post(f"{console_service.url}/v1/analyze", headers=AUTH, timeout=60).json()["created"][0]
    page.goto(f"{console_service.url}/h/{hid}")
    expect(page.locator("h1")).to_contain_text(hid)
    chart = page.locator("svg.timeline-chart")
    expect(chart).to_be_visible()
    assert chart.locator("circle.pt[data-axis='time']").count() > 0
    assert chart.locator("circle.pt[data-axis='step']").count() > 0
    for section in ("#evidence", "#scope", "#signatures", "#votes", "#runbook", "#resolution", "#log"):
        expect(page.locator(section)).to_be_visible()
    r = page.goto(f"{console_service.url}/h/H-4242")
    assert r.status == 404
    expect(page.locator("h1")).to_have_text("Not found")


def test_view_timeline_link_and_resolve_modal(console_service, page):
    from playwright.sync_api import expect

    ingest(console_service, sim_events())
    hid = httpx.post(f"{console_service.url}/v1/analyze", headers=AUTH, timeout=60).json()["created"][0]
    page.goto(f"{console_service.url}/?user=alice")
    send(page, f"/incident show {hid}")
    card = page.locator(".msg.ephemeral", has=page.locator(".block.header", has_text=hid))
    expect(card).to_be_visible(timeout=15000)
    link = card.locator("a.btn", has_text="View timeline")
    assert link.get_attribute("href") == f"/h/{hid}"
    card.locator("button[data-action='ib:resolve']").click()
    modal = page.locator("form.modal")
    expect(modal).to_be_visible(timeout=10000)
    modal.locator(".modal-submit").click()
    expect(modal.locator(".input-error")).to_be_visible(timeout=10000)
    modal.locator("textarea").first.fill("fan firmware <b>bug</b>")
    modal.locator(".modal-submit").click()
    expect(page.locator("form.modal")).to_have_count(0, timeout=10000)
    detail = httpx.get(f"{console_service.url}/v1/hypotheses/{hid}", headers=AUTH).json()
    assert detail["resolution"]["cause"] == "fan firmware <b>bug</b>"


def shots(service, page):
    """Screenshots for the README (only with INCIDENTBOT_SCREENSHOTS=1)."""
    if os.environ.get("INCIDENTBOT_SCREENSHOTS") != "1":
        return
    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    page.goto(f"{service.url}/?user=alice")
    page.wait_for_selector(".msg")
    page.screenshot(path=str(out / "console.png"))
    hid = httpx.get(f"{service.url}/v1/hypotheses", headers=AUTH).json()["hypotheses"][0]["id"]
    page.goto(f"{service.url}/h/{hid}")
    page.wait_for_selector("svg.timeline-chart")
    page.screenshot(path=str(out / "hypothesis.png"), full_page=True)
