"""Alertmanager payloads as real exporters label them (dcgm-exporter, node-exporter,
kube-state-metrics), the Xid reaching the Xid parser, one GPU spelling, idempotency without a
fingerprint, duplicates that make nothing, and payloads over the batch cap."""

from __future__ import annotations

import pytest

from incidentbot.ingest import from_alertmanager
from incidentbot.ingest.gpu import normalise_gpu
from incidentbot.models import Outbox, Signature
from incidentbot.signatures import fingerprint

AM = {"Authorization": "Bearer am-token"}

# dcgm-exporter's labels on DCGM_FI_DEV_XID_ERRORS (gpu, UUID, device, modelName, Hostname,
# DCGM_FI_DRIVER_VERSION, pci_bus_id; err_code/err_msg on its Xid counter), as an alert rule
# copies them; node-exporter's (instance host:9100, nodename); kube-state-metrics' (instance is
# the exporter's pod IP, node/pod/namespace name the workload).
DCGM = {
    "alertname": "GpuXidError",
    "Hostname": "gpu-node-17",
    "gpu": "3",
    "UUID": "GPU-1f027ee8-6e1e-2b8c-0108-3d370e5f0418",
    "device": "nvidia3",
    "modelName": "NVIDIA H100 80GB HBM3",
    "err_code": "79",
    "DCGM_FI_DEV_XID_ERRORS": "79",
    "instance": "10.42.3.17:9400",
    "DCGM_FI_DRIVER_VERSION": "535.129.03",
}
NODE = {"alertname": "NodeFilesystemError", "instance": "gpu-node-18:9100", "nodename": "gpu-node-18", "job": "node"}
KSM = {
    "alertname": "KubePodCrashLooping",
    "instance": "10.42.0.9:8080",
    "node": "gpu-node-19",
    "pod": "trainer-0",
    "namespace": "research",
    "job": "kube-state-metrics",
}


def payload(*alerts: dict) -> dict:
    return {"version": "4", "status": "firing", "receiver": "incidentbot", "alerts": list(alerts)}


def alert(
    labels: dict,
    summary: str | None = None,
    *,
    fp: str | None = "f00d",
    starts: str = "2025-01-20T10:00:00Z",
    status: str = "firing",
    description: str | None = None,
) -> dict:
    a = {"status": status, "labels": labels, "annotations": {}, "startsAt": starts}
    if summary is not None:
        a["annotations"]["summary"] = summary
    if description is not None:
        a["annotations"]["description"] = description
    if fp is not None:
        a["fingerprint"] = fp
    return a


# (case, labels, summary, host, gpu, category, title contains)
CONVERSIONS = [
    ("dcgm Xid in labels, prose summary", DCGM, "GPU 3 reported an Xid error", "gpu-node-17", "GPU3", "xid", "79"),
    ("dcgm Xid in labels only", DCGM, None, "gpu-node-17", "GPU3", "xid", "fallen off the bus"),
    (
        "Xid in the summary only",
        {"alertname": "GPUErrors", "Hostname": "n1", "gpu": "0"},
        "Xid 48 on GPU 0",
        "n1",
        "GPU0",
        "xid",
        "48",
    ),
    (
        "kernel Xid line in the summary",
        {"alertname": "GpuXid", "host": "n2"},
        "NVRM: Xid (PCI:0000:91:00): 94, pid=1, Contained ECC error",
        "n2",
        None,
        "xid",
        "94",
    ),
    (
        "node-exporter: nodename, not host:port",
        NODE,
        "Filesystem /data has I/O errors",
        "gpu-node-18",
        None,
        None,
        None,
    ),
    (
        "node-exporter without nodename: instance without port",
        {"alertname": "NodeDown", "instance": "gpu-node-20:9100"},
        "Node is down",
        "gpu-node-20",
        None,
        "alert",
        "NodeDown",
    ),
    (
        "kube-state-metrics: node, not the exporter's IP",
        KSM,
        "Pod research/trainer-0 is crash looping",
        "gpu-node-19",
        None,
        "alert",
        "KubePodCrashLooping",
    ),
    ("IPv6 instance", {"alertname": "NodeDown", "instance": "[fd00::5]:9100"}, "down", "fd00::5", None, "alert", None),
    (
        "device label only",
        {"alertname": "GpuHot", "Hostname": "n3", "device": "nvidia5"},
        "GPU is hot",
        "n3",
        "GPU5",
        "alert",
        None,
    ),
    (
        "UUID only",
        {"alertname": "GpuHot", "Hostname": "n3", "UUID": "GPU-abc"},
        "GPU is hot",
        "n3",
        "GPU-abc",
        "alert",
        None,
    ),
]

# Known-wrong conversions this file guards against.
KNOWN_WRONG = [
    # "AlertName: summary" read as a Python exception (GpuXidError: ...).
    (
        "alert name as an exception header",
        {"alertname": "GpuXidError", "Hostname": "n1"},
        "GPU 3 lost",
        "python_exception",
    ),
    (
        "alert name as an exception header, no summary",
        {"alertname": "TrainingError", "host": "n1"},
        None,
        "python_exception",
    ),
]


@pytest.mark.parametrize("case,labels,summary,host,gpu,category,title", CONVERSIONS, ids=[c[0] for c in CONVERSIONS])
def test_conversion_reads_real_exporter_labels(case, labels, summary, host, gpu, category, title):
    [ev] = from_alertmanager(payload(alert(labels, summary)))
    assert ev.get("host") == host
    assert ev.get("gpu") == gpu
    fp = fingerprint(ev["message"])
    assert fp.category != "python_exception", ev["message"]
    if category:
        assert fp.category == category, (fp.category, fp.title, ev["message"])
    if title:
        assert title in fp.title
    assert ev["attributes"]["labels"] == {k: str(v) for k, v in labels.items()}


@pytest.mark.parametrize("case,labels,summary,wrong", KNOWN_WRONG, ids=[c[0] for c in KNOWN_WRONG])
def test_alert_text_is_never_a_fake_exception_header(case, labels, summary, wrong):
    [ev] = from_alertmanager(payload(alert(labels, summary)))
    assert fingerprint(ev["message"]).category != wrong
    assert not ev["message"].startswith(labels["alertname"] + ":")


def test_xid_code_keeps_its_known_meaning():
    [ev] = from_alertmanager(payload(alert(DCGM, "GPU 3 reported an Xid error")))
    fp = fingerprint(ev["message"])
    assert fp.title.startswith("Xid 79:") and fp.cause_class == "hardware"
    # err_code on an alert that is not about Xids is not taken for one.
    [other] = from_alertmanager(
        payload(alert({"alertname": "DiskErrors", "host": "n", "err_code": "79"}, "disk errors"))
    )
    assert fingerprint(other["message"]).category != "xid"


@pytest.mark.parametrize(
    "raw,want",
    [
        ("3", "GPU3"),
        (3, "GPU3"),
        ("GPU5", "GPU5"),
        ("gpu 5", "GPU5"),
        ("nvidia7", "GPU7"),
        ("/dev/nvidia0", "GPU0"),
        ("GPU#05", "GPU5"),
        ("GPU-1f02", "GPU-1f02"),
        ("MIG-9a", "MIG-9a"),
        ("", None),
        (None, None),
        ("  ", None),
    ],
)
def test_normalise_gpu(raw, want):
    assert normalise_gpu(raw) == want


def test_gpu_ids_agree_with_events_of_the_same_database(client):
    """An alert's gpu "3" and an event's GPU3 are one GPU in the stored events."""
    client.post("/v1/events", json={"events": [{"job_id": "j", "message": "x", "host": "gpu-node-17", "gpu": "GPU3"}]})
    r = client.post("/v1/alertmanager", json=payload(alert(DCGM, "GPU 3 reported an Xid error")), headers=AM)
    assert r.status_code == 202, r.text
    gpus = {e["gpu"] for e in client.get("/v1/events").json()["events"]}
    assert gpus == {"GPU3"}


def test_alert_without_fingerprint_is_stored_once(client):
    body = payload(alert(NODE, "Filesystem /data has I/O errors", fp=None))
    assert client.post("/v1/alertmanager", json=body, headers=AM).json()["accepted"] == 1
    again = client.post("/v1/alertmanager", json=body, headers=AM).json()
    assert again["accepted"] == 0 and again["duplicates"] == 1
    # A new firing (another start) of the same alert is a new event.
    later = payload(alert(NODE, "Filesystem /data has I/O errors", fp=None, starts="2025-01-20T11:00:00Z"))
    assert client.post("/v1/alertmanager", json=later, headers=AM).json()["accepted"] == 1
    assert len(client.get("/v1/events").json()["events"]) == 2


@pytest.fixture
def alerting_client(db, settings_factory):
    from fastapi.testclient import TestClient

    from incidentbot.api import create_app
    from incidentbot.runtime import build_runtime

    rt = build_runtime(settings_factory(channel="#gpu-incidents"), db=db, migrate=False)
    with TestClient(create_app(rt)) as c:
        c.headers["Authorization"] = "Bearer test-token"
        yield c, rt


def test_resend_with_other_text_makes_no_signature_and_no_alert(alerting_client):
    """Same fingerprint and startsAt, other text: a duplicate, so no (empty) signature and no
    new-signature alert."""
    client, rt = alerting_client
    first = client.post(
        "/v1/alertmanager", json=payload(alert(NODE, "Filesystem /data has I/O errors")), headers=AM
    ).json()
    assert first["accepted"] == 1
    resend = client.post(
        "/v1/alertmanager", json=payload(alert(NODE, "Filesystem /scratch is read-only now")), headers=AM
    ).json()
    assert resend == {"accepted": 0, "duplicates": 1, "resolved_skipped": 0, "batches": 1}
    with rt.db.read() as session:
        counts = [s.count for s in session.query(Signature).all()]
        posts = session.query(Outbox).filter(Outbox.message_key.like("alert:S-%")).count()
    assert counts == [1]
    assert posts == 1


def test_duplicate_event_ids_on_the_events_route_make_no_signature(alerting_client):
    client, rt = alerting_client
    client.post("/v1/events", json={"events": [{"event_id": "e1", "job_id": "j", "message": "RuntimeError: one"}]})
    r = client.post(
        "/v1/events", json={"events": [{"event_id": "e1", "job_id": "j", "message": "ValueError: other"}]}
    ).json()
    assert r == {"accepted": 0, "duplicates": 1}
    with rt.db.read() as session:
        assert [s.count for s in session.query(Signature).all()] == [1]


def test_payload_over_the_batch_cap_is_stored_in_chunks(db, settings_factory):
    """A group larger than the cap is neither refused (Alertmanager would retry it for ever)
    nor stored in one transaction past the cap: it is stored in chunks of at most the cap."""
    from fastapi.testclient import TestClient

    from incidentbot.api import create_app
    from incidentbot.runtime import build_runtime

    rt = build_runtime(settings_factory(max_batch_events=40), db=db, migrate=False)
    sizes: list[int] = []
    real = rt.ingest.ingest

    def recording(events, **kw):
        sizes.append(len(events))
        return real(events, **kw)

    rt.ingest.ingest = recording  # records chunk sizes; the real service stores them
    alerts = [
        alert({**DCGM, "Hostname": f"gpu-node-{i:03d}"}, "GPU 3 reported an Xid error", fp=f"{i:04x}")
        for i in range(100)
    ]
    with TestClient(create_app(rt)) as client:
        r = client.post("/v1/alertmanager", json=payload(*alerts), headers=AM)
        assert r.status_code == 202 and r.json() == {
            "accepted": 100,
            "duplicates": 0,
            "resolved_skipped": 0,
            "batches": 3,
        }
        assert sizes == [40, 40, 20]
        again = client.post("/v1/alertmanager", json=payload(*alerts), headers=AM).json()
        assert again["accepted"] == 0 and again["duplicates"] == 100
