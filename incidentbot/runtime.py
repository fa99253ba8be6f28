"""Wiring: build every service once from settings, so shells (HTTP, Slack, CLI) share them.

Nothing here runs at import; tests build a Runtime with their own database and Slack stand-in.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from incidentbot import audit
from incidentbot.db import Database
from incidentbot.metrics import Metrics
from incidentbot.models import utcnow
from incidentbot.services.alert_quota import NewSignaturePolicy
from incidentbot.services.decisions import DecisionService
from incidentbot.services.hypotheses import HypothesisService
from incidentbot.services.ingest import IngestService
from incidentbot.services.readmodel import ReadModel
from incidentbot.services.resolutions import ResolutionService
from incidentbot.services.runbooks import RunbookService
from incidentbot.services.signatures import SignatureService
from incidentbot.services.votes import VoteService
from incidentbot.settings import Settings, SettingsError

__all__ = ["Runtime", "build_runtime", "load_topology"]

log = logging.getLogger(__name__)


def load_topology(path: Path | None) -> dict[str, str]:
    """``host switch`` per line (or ``host,switch``; ``#`` comments), or a JSON object
    ``{"host": "switch"}`` (what ``incidentbot simulate`` writes) → {host: switch}."""
    if path is None:
        return {}
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SettingsError(f"INCIDENTBOT_TOPOLOGY: cannot read {path}: {exc.strerror}") from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SettingsError(f"INCIDENTBOT_TOPOLOGY: {path} is not valid JSON: {exc}") from None
        if not all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in data.items()):
            raise SettingsError(f"INCIDENTBOT_TOPOLOGY: {path}: expected a JSON object of host → switch names")
        return dict(data)
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(",", " ").split()
        if len(parts) != 2:
            raise SettingsError(f"INCIDENTBOT_TOPOLOGY: {path}:{n}: expected 'host switch', got {line!r}")
        out[parts[0]] = parts[1]
    return out


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Callable[[], datetime] = utcnow
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    ingest: IngestService = field(init=False)
    signatures: SignatureService = field(init=False)
    hypotheses: HypothesisService = field(init=False)
    runbooks: RunbookService = field(init=False)
    votes: VoteService = field(init=False)
    resolutions: ResolutionService = field(init=False)
    decisions: DecisionService = field(init=False)
    metrics: Metrics = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        # Resolutions first: ingest reopens a fix when its failure comes back (regressions).
        self.votes = VoteService(self.db, clock=self.clock)
        self.resolutions = ResolutionService(self.db, votes=self.votes, channel=s.alert_channel, clock=self.clock)
        self.ingest = IngestService(
            self.db,
            on_regression=self.resolutions.check_regressions,
            channel=s.alert_channel,
            clock=self.clock,
            max_time_skew=s.max_time_skew_td,
            max_event_age=s.max_event_age_td,
            bucket_seconds=s.aggregate_bucket_seconds,
            alert_policy=NewSignaturePolicy(
                per_job=s.new_signature_alerts, total=s.new_signature_alerts_total, window=s.new_signature_window_td
            ),
        )
        self.signatures = SignatureService(self.db)
        self.metrics = Metrics(self.db)
        self.hypotheses = HypothesisService(
            self.db,
            topology=load_topology(s.topology),
            clock=self.clock,
            announce_to=s.alert_channel,
            metrics=self.metrics,
            max_rows=s.analysis_max_events,
        )
        self.runbooks = RunbookService(self.db, s.runbooks_dir, base_url=s.runbook_url)
        self.decisions = DecisionService(self.db, clock=self.clock)

    @property
    def read_model(self) -> ReadModel:
        """What every shell shows, over this runtime's services as they are now: the read model
        holds no state of its own, so one made per use follows a service replaced after start
        (a test's runbook folder, say)."""
        return ReadModel(
            self.db, signatures=self.signatures, hypotheses=self.hypotheses, runbooks=self.runbooks, votes=self.votes
        )


def build_runtime(
    settings: Settings, *, db: Database | None = None, migrate: bool = True, clock: Callable[[], datetime] = utcnow
) -> Runtime:
    audit.install()
    db = db or Database(settings.database_url)
    if migrate:
        db.migrate()
    return Runtime(settings=settings, db=db, clock=clock)
