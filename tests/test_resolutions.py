"""Resolutions, rejections and regressions (reopen on the fixed version or later, not before)."""

from __future__ import annotations

import json


import pytest
from sqlalchemy import select

from incidentbot.models import Hypothesis, HypothesisLog, HypothesisSignature
from incidentbot.services.versions import compare_versions, version_at_least
from tests.conftest import add_hypothesis, event

ILLEGAL = "RuntimeError: CUDA error: an illegal memory access was encountered"


@pytest.mark.parametrize(
    "a,b,want",
    [
        ("2.4.1", "2.4.0", 1),
        ("v1.10", "v1.9", 1),
        ("2.4", "2.4.0", 0),
        ("2.4.0rc1", "2.4.0", -1),
        ("1.3", "1.14", -1),
        ("abc1234", "def5678", None),
        ("nightly", "2.4", None),
    ],
)
def test_version_order(a, b, want):
    assert compare_versions(a, b) == want


def test_unknown_versions_reopen():
    assert version_at_least(None, "v2") and version_at_least("deadbeef", "v2") and not version_at_least("v1", "v2")


def setup_resolved(client, runtime, *, fixed_in):
    client.post(
        "/v1/events",
        json={
            "events": [
                event(event_id=f"a{i}", job_id="j1", code_version="v1.4", message=ILLEGAL, rank=i) for i in range(5)
            ]
        },
    )
    with runtime.db.write() as s:
        h = Hypothesis(title="bad kernel in v1.4", cause_class="software")
        s.add(h)
        s.flush()
        s.add(HypothesisSignature(hypothesis_id=h.id, signature_id=1, event_count=5))
        hid = h.id
    runtime.resolutions.resolve(
        hid,
        cause="kernel bug",
        fix="fixed the kernel",
        link="https://github.com/org/repo/pull/1",
        fixed_in=fixed_in,
        actor="UALICE",
    )
    return hid


def status(runtime, hid):
    with runtime.db.read() as s:
        return s.get(Hypothesis, hid).status


def test_event_on_older_version_does_not_reopen_but_later_does(client, runtime):
    hid = setup_resolved(client, runtime, fixed_in="v1.5")
    client.post(
        "/v1/events", json={"events": [event(event_id="old", job_id="j2", code_version="v1.4", message=ILLEGAL)]}
    )
    assert status(runtime, hid) == "resolved"
    client.post(
        "/v1/events", json={"events": [event(event_id="new", job_id="j3", code_version="v1.6", message=ILLEGAL)]}
    )
    assert status(runtime, hid) == "regressed"
    with runtime.db.read() as s:
        log = [
            l.text
            for l in s.scalars(
                select(HypothesisLog).where(HypothesisLog.hypothesis_id == hid, HypothesisLog.kind == "regressed")
            )
        ]
    assert log and "kernel bug" in log[0] and "j3" in log[0]
    detail = client.get(f"/v1/hypotheses/H-{hid}").json()
    assert detail["resolution"]["fixed_in"] == "v1.5" and detail["status"] == "regressed"


XID79 = "NVRM: Xid (PCI:0000:91:00): 79, pid=1896, GPU has fallen off the bus."


def setup_resolved_hardware(client, runtime, *, scope: dict) -> int:
    client.post(
        "/v1/events",
        json={
            "events": [
                event(event_id=f"x{i}", job_id=f"j{i}", host="node-7", gpu="GPU3", message=XID79) for i in range(3)
            ]
        },
    )
    with runtime.db.write() as s:
        h = Hypothesis(title="GPU3 of node-7 fell off the bus", cause_class="hardware", scope=scope)
        s.add(h)
        s.flush()
        s.add(HypothesisSignature(hypothesis_id=h.id, signature_id=1, event_count=3))
        hid = h.id
    runtime.resolutions.resolve(hid, cause="bad GPU", fix="replaced GPU3", actor="UALICE")
    return hid


# (case, scope, where the same text comes back, regressed?)
SCOPED = [
    ("another host", {"hosts": ["node-7"]}, {"host": "node-8", "gpu": "GPU3"}, False),
    ("same host", {"hosts": ["node-7"]}, {"host": "node-7", "gpu": "GPU3"}, True),
    ("no host given", {"hosts": ["node-7"]}, {}, False),
    (
        "another GPU of the host",
        {"hosts": ["node-7"], "gpus": ["node-7/GPU3"]},
        {"host": "node-7", "gpu": "GPU1"},
        False,
    ),
    ("the same GPU", {"hosts": ["node-7"], "gpus": ["node-7/GPU3"]}, {"host": "node-7", "gpu": "GPU3"}, True),
    ("another job of a job-scoped fault", {"jobs": ["j0"]}, {"job_id": "j9", "host": "node-7"}, False),
    ("unscoped: anywhere", {}, {"host": "node-8"}, True),
]


@pytest.mark.parametrize("case,scope,where,regressed", SCOPED, ids=[c[0] for c in SCOPED])
def test_regression_respects_the_hypothesis_scope(client, runtime, case, scope, where, regressed):
    hid = setup_resolved_hardware(client, runtime, scope=scope)
    r = client.post("/v1/events", json={"events": [event(event_id="back", message=XID79, **{"job_id": "j0", **where})]})
    assert r.json()["accepted"] == 1
    assert status(runtime, hid) == ("regressed" if regressed else "resolved")


def test_framework_version_fixed_in(client, runtime):
    hid = setup_resolved(client, runtime, fixed_in="torch=2.4.1")
    client.post("/v1/events", json={"events": [event(event_id="o", message=ILLEGAL, versions={"torch": "2.4.0"})]})
    assert status(runtime, hid) == "resolved"
    client.post("/v1/events", json={"events": [event(event_id="n", message=ILLEGAL, versions={"torch": "2.5.0"})]})
    assert status(runtime, hid) == "regressed"


def test_reject_records_why_and_reopen(client, runtime):
    hid = setup_resolved(client, runtime, fixed_in="")
    runtime.resolutions.reopen(hid, actor="UALICE")
    runtime.resolutions.reject(hid, reason="it was the switch", actor="UBOB")
    detail = client.get(f"/v1/hypotheses/H-{hid}").json()
    assert detail["status"] == "rejected" and detail["resolution"]["rejected_reason"] == "it was the switch"
    assert [t["kind"] for t in detail["timeline"]][-3:] == ["resolved", "reopened", "rejected"]


def test_resolve_modal_flow_and_regression_thread_through_slack(slack_harness):
    h = slack_harness
    h.ingest([event(event_id=f"x{i}", code_version="v1.4", message=ILLEGAL, rank=i) for i in range(3)])
    alert = h.ws.wait_for(lambda: h.channel_messages(), timeout=10)[0]
    hid = add_hypothesis(h.rt.db, "kernel bug", {1: 3})
    refused = h.command(f"resolve H-{hid}", user="UBOB")
    assert "only incident admins" in h.reply_text(refused, user="UBOB")
    resp = h.command(f"resolve H-{hid}")
    assert resp.status == 200
    view = h.ws.wait_for(lambda: h.ws.views_for("UALICE"), timeout=5)[-1]
    bad = h.sim.submit_view(
        user="UALICE",
        view_id=view["id"],
        values={
            "cause": {"value": ""},
            "fix": {"value": ""},
            "link": {"value": "not a url"},
            "fixed_in": {"value": ""},
        },
    )
    assert bad.json["response_action"] == "errors" and set(bad.json["errors"]) == {"cause", "link"}
    ok = h.sim.submit_view(
        user="UALICE",
        view_id=view["id"],
        values={
            "cause": {"value": "race in the fused <kernel>"},
            "fix": {"value": "patched"},
            "link": {"value": "https://example.org/pr/9"},
            "fixed_in": {"value": "v1.5"},
        },
    )
    assert ok.status == 200
    # stored before the form is acknowledged: the modal closes only once the resolution is saved
    assert status(h.rt, hid) == "resolved"
    with h.rt.db.read() as s:
        res = s.get(Hypothesis, hid).resolution
    assert res["by"] == "UALICE" and res["fixed_in"] == "v1.5"
    h.ingest([event(event_id="back", job_id="job-z", code_version="v1.6", message=ILLEGAL)])
    replies = h.ws.wait_for(
        lambda: [r for r in h.ws.replies(h.channel, alert["ts"]) if "Regression" in r["text"]], timeout=10
    )
    assert "race in the fused &lt;kernel&gt;" in replies[0]["text"]
    shown = h.reply_text(h.command(f"show H-{hid}"))
    assert "regressed" in shown and "race in the fused" in shown


def test_link_unlink_and_search_runbooks_through_slack(slack_harness):
    from incidentbot.models import RunbookLink

    h = slack_harness
    h.ingest([event(event_id=f"l{i}", message=ILLEGAL, rank=i) for i in range(2)])
    hid = add_hypothesis(h.rt.db, "kernel bug", {1: 2})
    # A target that does not exist is a polite no, and nothing is stored.
    missing = h.reply_text(h.command("link H-999 cuda-oom"))
    assert "H-999 does not exist" in missing and "Traceback" not in missing
    assert "no runbook" in h.reply_text(h.command(f"link H-{hid} no-such-runbook"))
    with h.rt.db.read() as s:
        assert s.scalars(select(RunbookLink)).all() == []
    # Linked by hand: shown on the hypothesis, logged on its timeline; unlinked: gone again.
    assert f"Linked runbook `silent-data-corruption` to H-{hid}" in h.reply_text(
        h.command(f"link H-{hid} silent-data-corruption")
    )
    assert "silent-data-corruption" in h.reply_text(
        h.command(f"show H-{hid}")
    ) or "Silent data corruption" in h.reply_text(h.command(f"show H-{hid}"))
    with h.rt.db.read() as s:
        kinds = [l.kind for l in s.scalars(select(HypothesisLog).where(HypothesisLog.hypothesis_id == hid))]
    assert "runbook" in kinds
    # The hypothesis shows the runbook's first steps, as Slack text (no Markdown ** left).
    shown = h.reply_text(h.command(f"show H-{hid}"))
    assert "Confirm:" in shown and "**" not in shown
    h.command(f"unlink H-{hid} silent-data-corruption")
    with h.rt.db.read() as s:
        assert [l.linked for l in s.scalars(select(RunbookLink))] == [False]
    # Search matches at word starts: "oom" finds the OOM runbooks, not "room".
    found = h.reply_text(h.command("runbooks oom"))
    assert "cuda-oom" in found and "dataloader-host-oom" in found and "checkpoint-io-failures" not in found
    assert "No runbook matches" in h.reply_text(h.command("runbooks zzzqqq"))


def test_late_event_without_a_version_does_not_reopen_a_fix(client, runtime):
    hid = setup_resolved(client, runtime, fixed_in="v1.5")
    # Sent late by a job that ran before the resolution and reports no version: not a regression.
    client.post(
        "/v1/events",
        json={"events": [event(event_id="late", job_id="j9", time="2020-01-01T00:00:00Z", message=ILLEGAL)]},
    )
    assert status(runtime, hid) == "resolved"
    # Without a version but after the resolution: the fix cannot be shown to hold, so it reopens.
    client.post("/v1/events", json={"events": [event(event_id="now", job_id="j9", message=ILLEGAL)]})
    assert status(runtime, hid) == "regressed"


def test_regression_note_goes_to_the_alert_of_the_signature_that_came_back(slack_harness):
    h = slack_harness
    other = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    h.ingest(
        [event(event_id=f"big{i}", message=ILLEGAL, rank=i) for i in range(5)]
        + [event(event_id="small0", message=other, rank=0)]
    )
    alerts = h.ws.wait_for(lambda: len(h.channel_messages()) >= 2 and h.channel_messages(), timeout=10)
    by_text = {("illegal" if "illegal memory" in json.dumps(m["blocks"]).lower() else "oom"): m for m in alerts}
    hid = add_hypothesis(h.rt.db, "one bug", {1: 5, 2: 1})
    h.rt.resolutions.resolve(hid, cause="allocator bug", actor="UALICE")
    h.ingest([event(event_id="oom-back", job_id="job-q", message=other)])
    replies = h.ws.wait_for(
        lambda: [r for r in h.ws.replies(h.channel, by_text["oom"]["ts"]) if "Regression" in r["text"]], timeout=10
    )
    assert "allocator bug" in replies[0]["text"]
    assert not [r for r in h.ws.replies(h.channel, by_text["illegal"]["ts"]) if "Regression" in r["text"]]
