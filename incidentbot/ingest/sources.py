"""Converters from other formats into the event schema (pure functions over parsed JSON).

torchelastic error files: ingest/torchelastic.py."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["from_alertmanager", "AlertmanagerResult"]

_PORT = re.compile(r":\d+$")


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
    common = payload.get("commonLabels") if isinstance(payload.get("commonLabels"), dict) else {}
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
        labels = {**common, **own_labels}
        labels = {str(k): str(v) for k, v in labels.items()}
        annotations = {str(k): str(v) for k, v in annotations.items()}
        alertname = labels.get("alertname", "alert")
        text = " — ".join(t for t in (_first(annotations, "summary", "message"), _first(annotations, "description")) if t)
        if not text:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
            text = f"{alertname} firing" + (f" ({shown})" if shown else "")
        elif alertname not in text:
            text = f"{alertname}: {text}"
        host = _first(labels, "host", "hostname", "node", "nodename", "instance")
        fp = alert.get("fingerprint")
        starts = alert.get("startsAt")
        event = {
            "job_id": _first(labels, "job_id", "training_job", "slurm_job_id", "run_id") or f"alertmanager/{labels.get('job', alertname)}",
            "message": text,
            "cluster": _first(labels, "cluster"),
            "host": _PORT.sub("", host) if host else None,
            "gpu": _first(labels, "gpu", "gpu_uuid", "UUID", "Hostname_gpu", "minor_number"),
            "kind": "alert",
            "attributes": {"labels": labels, "annotations": annotations, "generatorURL": alert.get("generatorURL"),
                           "receiver": payload.get("receiver"), "source": "alertmanager"},
        }
        if isinstance(fp, str) and fp:
            # A resend of the same firing has the same fingerprint and start: one event.
            event["event_id"] = f"am:{fp}:{starts}" if starts else f"am:{fp}"
        if isinstance(starts, str) and starts and not starts.startswith("0001-"):
            event["time"] = starts
        out.append({k: v for k, v in event.items() if v is not None})
    return out
