"""Converters from other formats into the event schema (pure functions over parsed JSON).

torchelastic error files: ingest/torchelastic.py."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from incidentbot.ingest.gpu import normalise_gpu

__all__ = ["from_alertmanager", "AlertmanagerResult", "alert_host", "alert_gpu", "alert_text"]

# "host:9100", "10.0.0.5:9400", "[fd00::5]:9100" → the address without the port.
_PORT = re.compile(r"(?<=\])\:\d+$|(?<=[^:\]]):\d+$")

# Which label names a host, best first. An exporter's `instance` is where Prometheus scraped it:
# for node-exporter that is the node, for kube-state-metrics and a dcgm-exporter pod it is the
# exporter's own address, so it comes last. `nodename` is node-exporter's (node_uname_info),
# `node` kube-state-metrics' and Kubernetes service discovery's, `Hostname` dcgm-exporter's (the
# exporter's hostname: the node's with hostNetwork, the pod's otherwise, so after `node`).
HOST_LABELS = ("host", "hostname", "nodename", "node", "kubernetes_node", "exported_node", "Hostname", "instance")
# Which label names a GPU: dcgm-exporter's index `gpu`, its `device` (nvidia3), then a UUID.
GPU_LABELS = ("gpu", "device", "minor_number", "gpu_uuid", "UUID")
JOB_LABELS = ("job_id", "training_job", "slurm_job_id", "run_id")
# Labels that carry an Xid code. dcgm-exporter's DCGM_FI_DEV_XID_ERRORS gauge has the last Xid as
# its value (rules copy it into a label or the summary); its Xid counter has `xid`/`err_code`
# labels and `err_msg`.
_XID_LABELS = ("xid", "err_code", "DCGM_FI_DEV_XID_ERRORS", "xid_code")
# An Xid named in prose: "Xid 79", "XID error 79", "xid=79", "Xid: 48". Linear (bounded gap).
_XID_PROSE = re.compile(r"\bxid(?:[ _-]?errors?)?\b[^0-9\n]{0,12}?(\d{1,3})\b", re.I)
# The kernel's own form, which the Xid parser reads.
_XID_LINE = re.compile(r"\bS?Xid \([^)\n]{0,40}\): \d+")


class AlertmanagerResult(list):
    """Events from a webhook payload; ``skipped_resolved`` counts 'resolved' notifications,
    which end an alert rather than report a failure."""

    skipped_resolved: int = 0


def _first(d: dict, *names: str) -> str | None:
    for n in names:
        v = d.get(n)
        if isinstance(v, str) and v.strip():
            return v.strip()
    return None


def alert_host(labels: dict[str, str]) -> str | None:
    """The host an alert is about, from the labels real exporters set (see HOST_LABELS)."""
    host = _first(labels, *HOST_LABELS)
    if host is None:
        return None
    host = _PORT.sub("", host)
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def alert_gpu(labels: dict[str, str]) -> str | None:
    """The GPU, in the one spelling events use (``GPU3``; a UUID when that is all there is)."""
    return normalise_gpu(_first(labels, *GPU_LABELS))


def _xid_code(labels: dict[str, str], texts: list[str]) -> int | None:
    """The Xid an alert reports, from a label or its text; None when it reports none. A label
    counts only on an alert about Xids (err_code is a generic name)."""
    about_xid = (
        any("xid" in k.lower() for k in labels)
        or "xid" in labels.get("alertname", "").lower()
        or any("xid" in t.lower() for t in texts)
    )
    if about_xid:
        for name in _XID_LABELS:
            raw = labels.get(name, "").strip()
            if raw.isdigit() and 0 < int(raw) < 1000:
                return int(raw)
    for t in texts:
        m = _XID_PROSE.search(t)
        if m and 0 < int(m.group(1)) < 1000:
            return int(m.group(1))
    return None


def alert_text(labels: dict[str, str], annotations: dict[str, str]) -> str:
    """The failure text of one alert, built so the signature parsers read the failure itself:
    the annotations as written, an Xid reported in a label or in prose restated in the kernel's
    form (which the Xid parser reads, with its known meaning), and the alert's name on a line of
    its own (``alertname=…``, which the alert parser reads when nothing more specific matched).
    Never ``Name: summary``: that reads as a Python exception header."""
    alertname = labels.get("alertname", "alert")
    texts = list(
        dict.fromkeys(t for t in (_first(annotations, "summary", "message"), _first(annotations, "description")) if t)
    )
    lines = list(texts)
    if not lines:
        shown = " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
        lines.append(f"{alertname} firing" + (f" ({shown})" if shown else ""))
    if not any(_XID_LINE.search(t) for t in texts):
        code = _xid_code(labels, texts)
        if code is not None:
            where = _first(labels, "pci_bus_id") or alert_gpu(labels) or "unknown"
            detail = _first(labels, "err_msg")
            lines.insert(
                0, f"Xid ({where}): {code}" + (f", {detail}" if detail else "") + " (reported by Alertmanager)"
            )
    lines.append(f"alertname={alertname}")
    return "\n".join(lines)


def alert_event_id(alert: dict, labels: dict[str, str]) -> str:
    """Idempotency key: one firing (an alert from its start) is one event, however often
    Alertmanager resends it. Alertmanager's fingerprint is a hash of the labels; an alert sent
    without one is keyed on its labels directly, so a resend is still a duplicate."""
    starts = alert.get("startsAt")
    starts = starts if isinstance(starts, str) and starts else ""
    fp = alert.get("fingerprint")
    if not (isinstance(fp, str) and fp):
        digest = hashlib.blake2b(json.dumps(sorted(labels.items())).encode(), digest_size=12).hexdigest()
        fp = f"labels-{digest}"
    return f"am:{fp}:{starts}" if starts else f"am:{fp}"


def from_alertmanager(payload: Any) -> AlertmanagerResult:
    """Alertmanager webhook (version 4) → events. Raises ValueError with a reason when malformed."""
    if not isinstance(payload, dict):
        raise ValueError("expected an Alertmanager webhook object")
    version = str(payload.get("version", "4"))
    if version != "4":
        raise ValueError(f"unsupported Alertmanager webhook version {version!r}: expected 4")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise ValueError("'alerts' must be a list")
    common_labels = payload.get("commonLabels")
    common = common_labels if isinstance(common_labels, dict) else {}
    out = AlertmanagerResult()
    for i, alert in enumerate(alerts):
        if not isinstance(alert, dict):
            raise ValueError(f"alerts[{i}] must be an object")
        if alert.get("status") == "resolved":
            out.skipped_resolved += 1
            continue
        own_labels = alert.get("labels") or {}
        annotations = alert.get("annotations") or {}
        # Check the types before merging: `{**common, **[...]}` would raise TypeError, not ValueError.
        if not isinstance(own_labels, dict) or not isinstance(annotations, dict):
            raise ValueError(f"alerts[{i}]: labels and annotations must be objects")
        labels = {str(k): str(v) for k, v in {**common, **own_labels}.items()}
        annotations = {str(k): str(v) for k, v in annotations.items()}
        alertname = labels.get("alertname", "alert")
        starts = alert.get("startsAt")
        event = {
            "event_id": alert_event_id(alert, labels),
            "job_id": _first(labels, *JOB_LABELS) or f"alertmanager/{labels.get('job', alertname)}",
            "message": alert_text(labels, annotations),
            "cluster": _first(labels, "cluster"),
            "host": alert_host(labels),
            "gpu": alert_gpu(labels),
            "kind": "alert",
            "attributes": {
                "labels": labels,
                "annotations": annotations,
                "generatorURL": alert.get("generatorURL"),
                "receiver": payload.get("receiver"),
                "source": "alertmanager",
            },
        }
        if isinstance(starts, str) and starts and not starts.startswith("0001-"):
            event["time"] = starts
        out.append({k: v for k, v in event.items() if v is not None})
    return out
