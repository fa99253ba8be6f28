"""Progress reports (events of kind "progress"): kept as job exposure, not as failures, and used
by the analysis so that a failure's absence on a version that ran for a long time means something."""

from __future__ import annotations

from sqlalchemy import func, select

from incidentbot.models import Event, Hypothesis, JobExposure, Signature
from incidentbot.reporter import Reporter

CRASH = "RuntimeError: CUDA error: an illegal memory access was encountered"


def progress(job: str, step: int, *, host: str, code: str, **kw) -> dict:
    return {
        "job_id": job,
        "kind": "progress",
        "message": f"progress: step {step}",
        "step": step,
        "host": host,
        "code_version": code,
        "versions": {"torch": "2.3.0"},
        **kw,
    }


def test_progress_reports_widen_a_segment_and_are_not_failures(client, db):
    batch = [progress("job-1", s, host="n1", code="v1.3") for s in (100, 5000, 2500)]
    batch.append(progress("job-1", 7000, host="n2", code="v1.3"))
    r = client.post("/v1/events", json={"events": batch})
    assert r.status_code == 202 and r.json() == {"accepted": 4, "duplicates": 0}
    # Sent again and later: idempotent, and the segment only widens.
    client.post("/v1/events", json={"events": batch + [progress("job-1", 9000, host="n1", code="v1.3")]})
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 0
        assert s.scalar(select(func.count()).select_from(Signature)) == 0, "a progress report is not a failure mode"
        segs = {(x.job_id, x.host): (x.first_step, x.last_step) for x in s.scalars(select(JobExposure))}
    assert segs == {("job-1", "n1"): (100, 9000), ("job-1", "n2"): (7000, 7000)}


def test_a_mixed_batch_stores_the_failures_and_the_exposure(client, db):
    r = client.post(
        "/v1/events",
        json={
            "events": [
                progress("job-2", 10, host="n1", code="v2"),
                {"event_id": "f1", "job_id": "job-2", "message": CRASH, "host": "n1", "step": 20, "code_version": "v2"},
            ]
        },
    )
    assert r.json() == {"accepted": 2, "duplicates": 0}
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 1
        assert s.scalar(select(func.count()).select_from(JobExposure)) == 1


def test_the_reporter_sends_progress(live_server, db):
    reporter = Reporter(
        live_server.url,
        "test-token",
        job_id="job-r",
        code_version="v9",
        versions={"torch": "2.4.0"},
        env={"HOSTNAME": "node-7"},
    )
    try:
        assert reporter.report_progress(1200) is True
        assert reporter.report_progress(2400) is True
    finally:
        reporter.close()
    with db.read() as s:
        seg = s.scalars(select(JobExposure)).one()
    assert (seg.job_id, seg.host, seg.code_version, seg.first_step, seg.last_step) == (
        "job-r",
        "node-7",
        "v9",
        1200,
        2400,
    )


def test_exposure_from_progress_makes_a_regression_visible(client, db):
    """Three jobs on v2 crash every few hundred steps; three jobs on v1 never crash. Without their
    progress reports nothing says v1 ever ran, so "since v2" cannot be told; with them it can."""
    crashes = []
    for j in range(3):
        for k in range(12):
            crashes.append(
                {
                    "event_id": f"c{j}-{k}",
                    "job_id": f"new-{j}",
                    "message": CRASH,
                    "host": f"n{j * 4 + k % 4}",
                    "step": 300 * (k + 1),
                    "code_version": "v2",
                    "time": f"2025-03-0{j + 4}T{k:02d}:00:00Z",
                }
            )
    assert client.post("/v1/events", json={"events": crashes}).status_code == 202
    client.post("/v1/analyze")
    with db.read() as s:
        before = [h.kind for h in s.scalars(select(Hypothesis))]
    assert "regression" not in before
    reports = [
        progress(f"old-{j}", step, host=f"n{20 + j}", code="v1", time=f"2025-03-0{j + 1}T{step // 1000:02d}:00:00Z")
        for j in range(3)
        for step in range(0, 20_001, 1000)
    ]
    assert client.post("/v1/events", json={"events": reports}).status_code == 202
    client.post("/v1/analyze")
    with db.read() as s:
        hyps = list(s.scalars(select(Hypothesis).where(Hypothesis.status == "open")))
    regression = [h for h in hyps if h.kind == "regression"]
    assert regression, [(h.kind, h.title, h.evidence) for h in hyps]
    assert "v2" in regression[0].title and any("v1" in line for line in regression[0].evidence)
