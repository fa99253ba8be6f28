"""A hypothesis offers the runbook of its cause before that of its consequence: an Xid 79
hypothesis whose storm made 1,200 NCCL watchdog timeouts still gets the Xid runbook first."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from incidentbot.models import Signature
from incidentbot.services.runbooks import cause_first
from tests.conftest import add_hypothesis

XID79 = "NVRM: Xid (PCI:0000:91:00): 79, pid=1896, GPU has fallen off the bus."
WATCHDOG = (
    "[rank{r}]:[E ProcessGroupNCCL.cpp:616] [Rank {r}] Watchdog caught collective operation timeout: "
    "WorkNCCL(SeqNum=88, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600000 milliseconds "
    "before timing out."
)


def _at(seconds: float) -> str:
    return (datetime(2025, 1, 20, 10, tzinfo=timezone.utc) + timedelta(seconds=seconds)).isoformat()


def test_xid_hypothesis_offers_the_xid_runbook_before_the_watchdog_one(client, runtime):
    client.post(
        "/v1/events",
        json={"events": [{"job_id": "run-1", "host": "node-7", "gpu": "GPU3", "message": XID79, "time": _at(0)}]},
    )
    storm = [
        {
            "job_id": "run-1",
            "host": f"node-{r // 8}",
            "rank": r,
            "message": WATCHDOG.format(r=r),
            "time": _at(600 + r * 0.01),
        }
        for r in range(1200)
    ]
    assert client.post("/v1/events", json={"events": storm}).json()["accepted"] == 1200
    sigs = {s["category"]: s for s in client.get("/v1/signatures").json()["signatures"]}
    xid, watchdog = int(sigs["xid"]["id"][2:]), int(sigs["nccl_watchdog_timeout"]["id"][2:])
    hid = add_hypothesis(
        runtime.db, "GPU3 on node-7 fell off the bus", {xid: 1, watchdog: 1200}, cause_class="hardware"
    )
    runbooks = client.get(f"/v1/hypotheses/H-{hid}").json()["runbook_ids"]
    assert runbooks[0] == "gpu-fallen-off-bus", runbooks
    assert "nccl-watchdog-timeout" in runbooks
    assert runbooks.index("gpu-fallen-off-bus") < runbooks.index("nccl-watchdog-timeout")


def _sig(i: int, cause: str, count: int, first: float) -> Signature:
    return Signature(
        id=i,
        fingerprint=f"f{i}",
        title=f"S{i}",
        category="c",
        cause_class=cause,
        template="t",
        count=count,
        first_seen=datetime.fromtimestamp(first, tz=timezone.utc),
        last_seen=datetime.fromtimestamp(first, tz=timezone.utc),
    )


# (case, hypothesis cause class, signatures (id, cause class, count, first seen), expected order)
ORDERS = [
    ("cause before a bigger consequence", "hardware", [(1, "unknown", 1200, 600), (2, "hardware", 1, 0)], [2, 1]),
    (
        "precursor before the storm when no cause class matches",
        "network",
        [(1, "unknown", 1200, 600), (2, "software", 3, 0)],
        [2, 1],
    ),
    ("unknown cause: first appearance decides", "unknown", [(1, "unknown", 5, 50), (2, "unknown", 9, 10)], [2, 1]),
    (
        "several cause signatures: most frequent first",
        "software",
        [(1, "software", 2, 0), (2, "software", 7, 5)],
        [2, 1],
    ),
]


@pytest.mark.parametrize("case,cause,sigs,want", ORDERS, ids=[o[0] for o in ORDERS])
def test_cause_first(case, cause, sigs, want):
    assert [s.id for s in cause_first([_sig(*x) for x in sigs], cause_class=cause)] == want
