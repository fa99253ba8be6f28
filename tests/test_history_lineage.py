"""Run lineage: optional top-level ``run``/``attempt`` (or the attributes launchers use), stored
on the event and its aggregate and passed to the analysis; the reporter's defaults from
torchelastic and SLURM."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from incidentbot.ingest.schema import validate_batch
from incidentbot.models import Event, EventAggregate
from incidentbot.reporter import run_lineage as reporter_lineage
from incidentbot.services.ingest import run_lineage

BASE = {"job_id": "job-1", "message": "RuntimeError: CUDA error: an illegal memory access was encountered"}

LINEAGE = [
    ({"run": "r-7", "attempt": 2}, ("r-7", 2)),
    ({"attributes": {"run_id": "te-123", "restart_count": 3}}, ("te-123", 3)),
    ({"attributes": {"run_id": 991, "attempt": "4"}}, ("991", 4)),
    ({"run": "top", "attributes": {"run_id": "attr", "attempt": 1}}, ("top", 1)),  # the field wins
    ({"attributes": {"attempt": 0, "restart_count": 5}}, (None, 0)),  # attempt before restart_count
    ({}, (None, None)),
    # attributes that are not a run or an attempt are ignored, not guessed at
    ({"attributes": {"run_id": True, "attempt": -1, "restart_count": "x"}}, (None, None)),
    ({"attributes": {"run_id": "", "restart_count": 2.5}}, (None, None)),
]


@pytest.mark.parametrize(("fields", "expected"), LINEAGE)
def test_run_lineage(fields, expected):
    events, errors = validate_batch([{**BASE, **fields}])
    assert not errors
    assert run_lineage(events[0]) == expected


KNOWN_WRONG = [
    ({"attempt": -1}, "attempt"),
    ({"attempt": "two"}, "attempt"),
    ({"run": ""}, "run"),
    ({"run": "x" * 257}, "run"),
    ({"run": 7}, "run"),
]


@pytest.mark.parametrize(("fields", "field"), KNOWN_WRONG)
def test_bad_lineage_fields_are_refused_with_the_field_named(fields, field):
    events, errors = validate_batch([{**BASE, **fields}])
    assert events == [] and [e.field for e in errors] == [field]


REPORTER_ENV = [
    (
        {
            "TORCHELASTIC_RUN_ID": "te-1",
            "TORCHELASTIC_RESTART_COUNT": "2",
            "SLURM_JOB_ID": "55",
            "SLURM_RESTART_COUNT": "9",
        },
        {"run": "te-1", "attempt": 2},
    ),
    ({"SLURM_JOB_ID": "55", "SLURM_RESTART_COUNT": "1"}, {"run": "55", "attempt": 1}),
    ({"INCIDENTBOT_RUN": "mine", "TORCHELASTIC_RUN_ID": "te-1"}, {"run": "mine"}),
    ({"TORCHELASTIC_RESTART_COUNT": "x"}, {}),
    ({}, {}),
]


@pytest.mark.parametrize(("env", "expected"), REPORTER_ENV)
def test_reporter_lineage_from_the_launcher(env, expected):
    assert reporter_lineage(env) == expected


def test_lineage_is_stored_on_event_and_aggregate_and_reaches_the_analysis(client, runtime, db):
    body = [
        {**BASE, "event_id": "a", "host": "h1", "run": "r-1", "attempt": 0},
        {**BASE, "event_id": "b", "host": "h1", "attributes": {"run_id": "r-1", "restart_count": 1}},
    ]
    assert client.post("/v1/events", json={"events": body}).status_code == 202
    with db.read() as s:
        assert sorted(s.execute(select(Event.event_id, Event.run, Event.attempt)).all()) == [
            ("a", "r-1", 0),
            ("b", "r-1", 1),
        ]
        assert sorted(s.execute(select(EventAggregate.run, EventAggregate.attempt, EventAggregate.count)).all()) == [
            ("r-1", 0, 1),
            ("r-1", 1, 1),
        ]
        records, *_ = runtime.hypotheses.load_inputs(s)
    assert sorted((r.run, r.attempt, r.count) for r in records) == [("r-1", 0, 1), ("r-1", 1, 1)]
    listed = {e["event_id"]: e for e in client.get("/v1/events").json()["events"]}
    assert (listed["b"]["run"], listed["b"]["attempt"]) == ("r-1", 1)


def test_job_name_is_stored_on_the_aggregate_and_reaches_the_analysis(client, runtime, db):
    """SLURM's job name (attributes.job_name) ties a resubmission's new numeric id to its run."""
    body = [
        {**BASE, "event_id": "a", "job_id": "8126167", "host": "h1", "attributes": {"job_name": "moe-sft50"}},
        {**BASE, "event_id": "b", "job_id": "8136476", "host": "h1", "attributes": {"slurm_job_name": "moe-sft50"}},
        {**BASE, "event_id": "c", "job_id": "8136476", "host": "h2"},  # a line without the name
        {**BASE, "event_id": "d", "job_id": "9", "host": "h1", "attributes": {"job_name": 7}},  # no name
    ]
    assert client.post("/v1/events", json={"events": body}).status_code == 202
    with db.read() as s:
        stored = sorted(s.execute(select(EventAggregate.job_id, EventAggregate.host, EventAggregate.job_name)).all())
        assert stored == [("8126167", "h1", "moe-sft50"), ("8136476", "h1", "moe-sft50"), ("8136476", "h2", None), ("9", "h1", None)]
        records, *_ = runtime.hypotheses.load_inputs(s)
    assert sorted((r.job_id, r.host, r.job_name) for r in records) == stored
    # the raw attributes are kept as given
    listed = {e["event_id"]: e for e in client.get("/v1/events").json()["events"]}
    assert listed["b"]["attributes"] == {"slurm_job_name": "moe-sft50"}


def test_reporter_sends_slurms_job_name_and_keeps_the_callers_attributes(live_server, runtime, db):
    """Against the real service: SLURM_JOB_NAME goes as attributes.job_name, merged with what the
    caller adds, and lands on the aggregate the analysis reads."""
    import httpx

    from incidentbot.reporter import Reporter

    env = {"SLURM_JOB_ID": "8126167", "SLURM_JOB_NAME": "moe-sft50", "HOSTNAME": "h1"}
    rep = Reporter(live_server.url, "test-token", env=env, versions={"torch": "2.5"})
    assert rep.report("RuntimeError: boom", step=3)
    assert rep.report("RuntimeError: boom again", attributes={"shard": "03266"})
    events = httpx.get(f"{live_server.url}/v1/events", headers={"Authorization": "Bearer test-token"}).json()["events"]
    assert sorted(e["attributes"] == {"job_name": "moe-sft50"} for e in events) == [False, True]
    assert {"job_name": "moe-sft50", "shard": "03266"} in [e["attributes"] for e in events]
    with db.read() as s:
        assert set(s.execute(select(EventAggregate.job_id, EventAggregate.job_name)).all()) == {("8126167", "moe-sft50")}
