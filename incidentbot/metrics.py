"""Prometheus metrics, one registry per service instance (tests build several in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlmodel import col

from incidentbot.models import Hypothesis, Outbox, Signature

__all__ = ["Metrics"]


class _DatabaseCollector:
    """Gauges read from the database at scrape time: signatures and hypotheses by status, outbox backlog."""

    def __init__(self, db):
        self.db = db

    def collect(self):
        sigs = GaugeMetricFamily("incidentbot_signatures", "Signatures by state", labels=["state"])
        hyps = GaugeMetricFamily("incidentbot_hypotheses", "Hypotheses by status", labels=["status"])
        backlog = GaugeMetricFamily(
            "incidentbot_outbox_backlog", "Slack messages waiting in the outbox", labels=["status"]
        )
        try:
            with self.db.read() as s:
                merged = (
                    s.scalar(select(func.count()).select_from(Signature).where(col(Signature.merged_into).is_not(None)))
                    or 0
                )
                total = s.scalar(select(func.count()).select_from(Signature)) or 0
                sigs.add_metric(["active"], total - merged)
                sigs.add_metric(["merged"], merged)
                for status, n in s.execute(
                    select(col(Hypothesis.status), func.count()).group_by(col(Hypothesis.status))
                ):
                    hyps.add_metric([status], n)
                for status, n in s.execute(
                    select(col(Outbox.status), func.count())
                    .where(col(Outbox.status) != "done")
                    .group_by(col(Outbox.status))
                ):
                    backlog.add_metric([status], n)
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            return
        yield sigs
        yield hyps
        yield backlog


class Metrics:
    def __init__(self, db):
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("incidentbot_events", "Events by outcome and source", ["outcome", "source"], registry=r)
        self.ingest_seconds = Histogram(
            "incidentbot_ingest_seconds",
            "Time to validate and store one batch",
            ["source"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.analysis_seconds = Histogram(
            "incidentbot_analysis_seconds",
            "Hypothesis analysis duration",
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
        )
        self.deliveries = Counter("incidentbot_slack_deliveries", "Outbox rows delivered to Slack", ["op"], registry=r)
        self.delivery_errors = Counter(
            "incidentbot_slack_delivery_errors", "Slack delivery errors by Slack error code", ["error"], registry=r
        )
        self.refused = Counter(
            "incidentbot_requests_refused",
            "API requests refused before anything was stored, "
            "by path and reason (unauthorized, forbidden, bad_json, too_large, invalid)",
            ["path", "reason"],
            registry=r,
        )
        self.auth_failures = Counter(
            "incidentbot_auth_failures",
            "Failed authentications by reason (missing, not_bearer, "
            "invalid, wrong_scope, console_session, console_csrf, host)",
            ["reason"],
            registry=r,
        )
        self.slack_duplicates = Counter(
            "incidentbot_slack_duplicate_deliveries",
            "Slack requests delivered again (retries, resends), acked without acting, by kind",
            ["kind"],
            registry=r,
        )
        self.scheduler_runs = Counter(
            "incidentbot_scheduler_runs", "Background units of work done", ["job"], registry=r
        )
        r.register(_DatabaseCollector(db))

    def render(self) -> bytes:
        return generate_latest(self.registry)
