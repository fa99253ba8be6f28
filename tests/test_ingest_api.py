"""The ingest API's guarantees: auth, whole-batch validation, idempotency, limits, odd text."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from sqlalchemy import func, select

from incidentbot.models import Event, Signature
from tests.conftest import event

WATCHDOG = (
    "[rank{r}]:[E1206 18:44:12.715298746 ProcessGroupNCCL.cpp:607] [Rank {r}] Watchdog caught collective "
    "operation timeout: WorkNCCL(SeqNum=7753, OpType=ALLREDUCE, NumelIn=544997376, NumelOut=544997376, "
    "Timeout(ms)=600000) ran for 600061 milliseconds before timing out."
)


def count_events(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(Event))


def test_accepts_a_batch_and_assigns_signatures(client, db):
    r = client.post(
        "/v1/events", json={"events": [event(event_id="a", rank=1, host="h1"), event(event_id="b", rank=2, host="h2")]}
    )
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 2, "duplicates": 0}
    page = client.get("/v1/events").json()
    assert [e["event_id"] for e in page["events"]] == ["a", "b"]
    assert page["events"][0]["signature_id"] == page["events"][1]["signature_id"]
    assert page["events"][0]["signature_id"].startswith("S-")
    assert page["events"][0]["hypothesis_id"] is None
    sigs = client.get("/v1/signatures").json()["signatures"]
    assert len(sigs) == 1 and sigs[0]["count"] == 2 and sigs[0]["host_count"] == 2 and sigs[0]["rank_count"] == 2
    assert sigs[0]["category"] == "cuda_runtime"


@pytest.mark.parametrize(
    "header,status", [(None, 401), ("Bearer nope", 401), ("Basic dGVzdA==", 401), ("Bearer am-token", 403)]
)
def test_bad_tokens_store_nothing(client, db, header, status):
    client.headers.pop("Authorization")
    headers = {"Authorization": header} if header else {}
    r = client.post("/v1/events", json={"events": [event()]}, headers=headers)
    assert r.status_code == status
    assert count_events(db) == 0


def test_invalid_batch_lists_each_bad_event_and_stores_nothing(client, db):
    batch = [event(), {"message": "no job"}, event(rank=-1), event(time="yesterday"), "not an object", event()]
    r = client.post("/v1/events", json={"events": batch})
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert {(e["index"], e["field"]) for e in errors} >= {(1, "job_id"), (2, "rank"), (3, "time"), (4, "")}
    assert 0 not in {e["index"] for e in errors} and 5 not in {e["index"] for e in errors}
    assert count_events(db) == 0


def test_retried_batch_counts_duplicates(client, db):
    batch = {"events": [event(event_id=f"e{i}", rank=i) for i in range(10)]}
    assert client.post("/v1/events", json=batch).json() == {"accepted": 10, "duplicates": 0}
    assert client.post("/v1/events", json=batch).json() == {"accepted": 0, "duplicates": 10}
    # duplicates inside one batch too
    r = client.post("/v1/events", json={"events": [event(event_id="x"), event(event_id="x")]})
    assert r.json() == {"accepted": 1, "duplicates": 1}
    assert count_events(db) == 11
    with db.read() as s:
        assert s.scalar(select(Signature.count)) == 11


def test_racing_identical_batches_store_once(live_server, db):
    batch = {"events": [event(event_id=f"race-{i}", rank=i, message=WATCHDOG.format(r=i)) for i in range(200)]}
    results = []

    def send():
        with httpx.Client(base_url=live_server.url, headers={"Authorization": "Bearer test-token"}, timeout=60) as c:
            results.append(c.post("/v1/events", json=batch).json())

    threads = [threading.Thread(target=send) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(r["accepted"] for r in results) == 200
    assert sum(r["duplicates"] for r in results) == 600
    assert count_events(db) == 200
    with db.read() as s:
        sig = s.scalars(select(Signature)).one()
        assert sig.count == 200 and sig.rank_count == 200


def test_limits(client, db, runtime):
    r = client.post("/v1/events", json={"events": []})
    assert r.status_code == 422
    r = client.post("/v1/events", json={"events": [event()] * 5001})
    assert r.status_code == 413 and "5000" in r.json()["detail"]
    r = client.post("/v1/events", json={"events": [event(message="x" * (64 * 1024 + 1))]})
    assert r.status_code == 422 and "65536" in r.text
    big = b'{"events": [' + b'{"job_id": "j", "message": "' + b"y" * (11 * 1024 * 1024) + b'"}]}'
    r = client.post("/v1/events", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    assert count_events(db) == 0


@pytest.mark.parametrize(
    "raw,status",
    [
        (b"", 400),
        (b"{", 400),
        (b"\xff\xfe{}", 400),
        (b"[" * 100000 + b"]" * 100000, 400),
        (b'{"events": {"a": 1}}', 422),
        (b'{"events": [{"job_id": "j", "message": "m", "rank": 1e400}]}', 422),
        (b'{"events": [{"job_id": "j", "message": "m", "step": 99999999999999999999999999}]}', 422),
    ],
)
def test_malformed_bodies_get_clear_errors(client, db, raw, status):
    r = client.post("/v1/events", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert "detail" in r.json()
    assert count_events(db) == 0


def test_odd_text_is_stored_not_a_500(client, db):
    nul = "boom\x00after nul"
    surrogate = json.dumps({"events": [event(event_id="s", message="bad \ud800 surrogate")]})  # escaped lone surrogate
    long_line = "E" * (64 * 1024 - 10)
    r = client.post(
        "/v1/events", json={"events": [event(event_id="n", message=nul), event(event_id="l", message=long_line)]}
    )
    assert r.status_code == 202, r.text
    r = client.post("/v1/events", content=surrogate.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 202, r.text
    msgs = {e["event_id"]: e["message"] for e in client.get("/v1/events").json()["events"]}
    assert msgs["n"] == "boom\u2400after nul"
    assert msgs["s"] == "bad \ufffd surrogate"
    assert len(msgs["l"]) == 64 * 1024 - 10


def test_unknown_fields_are_kept_under_attributes(client):
    r = client.post("/v1/events", json={"events": [event(event_id="u", slurm_job="1234", attributes={"a": 1})]})
    assert r.status_code == 202
    e = client.get("/v1/events").json()["events"][0]
    assert e["attributes"] == {"a": 1, "slurm_job": "1234"}


def test_cursor_pagination_is_stable(client):
    client.post("/v1/events", json={"events": [event(event_id=f"p{i:03}") for i in range(25)]})
    seen, cursor = [], None
    while True:
        page = client.get("/v1/events", params={"limit": 10, **({"cursor": cursor} if cursor else {})}).json()
        seen += [e["event_id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"p{i:03}" for i in range(25)]
    assert client.get("/v1/events", params={"cursor": "garbage!"}).status_code == 400


def test_healthz_and_openapi(client):
    assert client.get("/healthz").json()["ok"] is True
    spec = client.get("/openapi.json").json()
    for path in ("/v1/events", "/v1/alertmanager", "/v1/signatures", "/v1/hypotheses", "/v1/analyze", "/healthz"):
        assert path in spec["paths"]


def test_rule_version_change_keeps_the_old_signature(client, db, runtime):
    from sqlalchemy import update as sa_update

    client.post("/v1/events", json={"events": [event(event_id="r1")]})
    with db.write() as s:
        # As if these rows were made by older rules with another fingerprint.
        s.execute(sa_update(Signature).values(rules_version="2020.01-1", fingerprint="old-fp"))
    runtime.ingest._sig_ids.clear()  # a restart: the process forgets what it knew
    runtime.ingest._members.clear()
    runtime.ingest._older_rules = None
    r = client.post("/v1/events", json={"events": [event(event_id="r2")]})
    assert r.status_code == 202
    sigs = client.get("/v1/signatures").json()["signatures"]
    assert len(sigs) == 1 and sigs[0]["id"] == "S-1" and sigs[0]["count"] == 2 and sigs[0]["merged_from"] == ["S-2"]
    assert {e["signature_id"] for e in client.get("/v1/events").json()["events"]} == {"S-1"}
