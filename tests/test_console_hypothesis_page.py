"""The hypothesis page: the chart is not flattened by a storm (log count axis), the runbook panel
renders mrkdwn, and host-level faults do not say "0 ranks"."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from incidentbot.console.chart import timeline_svg
from incidentbot.slack.views import signature_alert
from tests.conftest import add_hypothesis, free_port
from tests.test_console import open_console

XID79 = "NVRM: Xid (PCI:0000:91:00): 79, pid=1896, GPU has fallen off the bus."
WATCHDOG = (
    "[rank{r}]:[E ProcessGroupNCCL.cpp:616] [Rank {r}] Watchdog caught collective operation timeout: "
    "WorkNCCL(SeqNum=88, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600000 milliseconds "
    "before timing out."
)
T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)


def _heights(svg: str, sid: str) -> list[float]:
    """Bottom of the plot minus each point's y, for one signature's time-panel points."""
    ys = [
        float(y)
        for y in re.findall(
            rf'<circle class="pt" cx="[^"]+" cy="([^"]+)"[^>]*data-signature="{sid}"[^>]*data-axis="time"', svg
        )
    ]
    return ys


def test_one_cause_event_stays_visible_beside_a_storm():
    svg = str(
        timeline_svg(
            {"S-1": [(T0, None)], "S-2": [(T0 + timedelta(minutes=10, seconds=i / 100), None) for i in range(1200)]}
        )
    )
    cause_y = _heights(svg, "S-1")
    storm_y = _heights(svg, "S-2")
    assert cause_y and storm_y
    top, bottom = 28, 190 - 34  # PAD_T, PANEL_H - PAD_B of the first panel
    plot_h = bottom - top
    # Linear, one event beside 1,200 sits 0.08% of the height above the axis; here about a tenth.
    assert (bottom - cause_y[0]) / plot_h > 0.05
    assert min(storm_y) < cause_y[0]  # the storm is still the taller
    assert 'data-scale="log"' in svg and ">1<" in svg and ">1,000<" in svg


def test_signature_facts_leave_out_zero_ranks():
    sig = {
        "id": "S-1",
        "title": "Xid 79",
        "category": "xid",
        "cause_class": "hardware",
        "count": 3,
        "job_count": 1,
        "host_count": 1,
        "rank_count": 0,
        "first_seen": T0,
        "last_seen": T0,
        "template": "t",
        "example": "x",
    }
    text = str(signature_alert(sig, runbook=None, public_url="http://127.0.0.1:8000"))
    assert "0 ranks" not in text and "1 host" in text
    assert "4 ranks" in str(signature_alert({**sig, "rank_count": 4}, runbook=None, public_url="http://x"))


@pytest.fixture
def console_app(db, settings_factory):
    from fastapi.testclient import TestClient

    from incidentbot.app import build_app
    from incidentbot.runtime import build_runtime

    rt = build_runtime(settings_factory(channel="C0INCIDENTS", scheduler="off"), db=db, migrate=False)
    app = build_app(rt, port=free_port(), start_workers=False)
    # The console answers only for its own Host (127.0.0.1), and /h/ pages need its session cookie.
    with TestClient(app, base_url="http://127.0.0.1") as c:
        c.rt = rt
        c.headers["Authorization"] = "Bearer test-token"
        open_console(c, "http://127.0.0.1")
        yield c


def test_runbook_panel_renders_mrkdwn(console_app):
    c = console_app
    r = c.post(
        "/v1/events",
        json={
            "events": [{"job_id": "run-1", "host": "node-7", "gpu": "GPU3", "message": XID79, "time": T0.isoformat()}]
        },
    )
    assert r.status_code == 202, r.text
    hid = add_hypothesis(c.rt.db, "GPU3 on node-7 fell off the bus", {1: 1}, cause_class="hardware")
    summary = c.rt.runbooks.summary("gpu-fallen-off-bus")
    assert "*" in summary  # the summary is Slack mrkdwn (bold headings)
    html = c.get(f"/h/H-{hid}").text
    panel = html[html.index('id="runbook"') :]
    panel = panel[: panel.index("</section>")]
    assert '<pre class="summary">' not in panel
    assert "<b>" in panel or "<strong>" in panel
    assert not re.search(r"(?<![\w`])\*[A-Z][^*\n]{1,60}\*(?![\w`])", panel), "raw mrkdwn bold shown"
