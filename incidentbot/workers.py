"""Background work. Each job is a "do one unit, return whether there was any" function whose claim
is atomic in the database; APScheduler only triggers them, so running the scheduler in every
replica is safe (a unit one replica claimed is invisible to the others)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor as APThreadPool
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import InterfaceError, OperationalError

from incidentbot.services.outbox import prune_delivered

__all__ = ["Workers", "run_until_idle"]

log = logging.getLogger(__name__)


def run_until_idle(unit: Callable[[], bool], *, limit: int = 1000, stop: threading.Event | None = None) -> int:
    """Call ``unit`` until it reports no work (or ``limit`` times, or ``stop`` is set); returns
    the units done."""
    done = 0
    while done < limit and not (stop is not None and stop.is_set()):
        try:
            if not unit():
                break
        except (OperationalError, InterfaceError) as exc:
            # The database is down or restarting: say so in one line (the request path says the
            # same), and try again at the next trigger.
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
            log.warning("background unit %s: database unavailable: %s", getattr(unit, "__name__", unit), reason)
            break
        except Exception:  # noqa: BLE001 - one bad unit must not stop the loop for good
            log.exception("background unit %s failed", getattr(unit, "__name__", unit))
            break
        done += 1
    return done


class Workers:
    def __init__(self, rt, *, outbox, publisher, digest_job: Callable[[Any], None] | None = None):
        self.rt = rt
        self.outbox = outbox
        self.publisher = publisher
        self.digest_job = digest_job
        self.scheduler: BackgroundScheduler | None = None
        self._stopping = threading.Event()
        self.stats = {"deliveries": 0, "alert_refreshes": 0, "analyses": 0, "polls_closed": 0, "outbox_pruned": 0}

    # -- the units ------------------------------------------------------------------------

    def _count(self, job: str, n: int) -> None:
        self.stats[job] += n
        if n:
            self.rt.metrics.scheduler_runs.labels(job).inc(n)

    def deliver(self) -> None:
        self._count("deliveries", run_until_idle(self.outbox.deliver_one, limit=200, stop=self._stopping))

    def refresh_alerts(self) -> None:
        interval = self.rt.settings.alert_update_interval
        self._count(
            "alert_refreshes",
            run_until_idle(lambda: self.publisher.refresh_alert_once(interval=interval), limit=50, stop=self._stopping),
        )

    def analyze(self) -> None:
        def analyze_once() -> bool:
            return self.rt.hypotheses.analyze_if_due(
                worker=self.rt.worker_id, debounce=self.rt.settings.analysis_debounce
            )

        self._count("analyses", run_until_idle(analyze_once, limit=1))

    def prune_outbox(self) -> None:
        def prune_once() -> bool:
            return prune_delivered(self.rt.db, clock=self.rt.clock) > 0

        self._count("outbox_pruned", run_until_idle(prune_once, limit=20, stop=self._stopping))

    def close_polls(self) -> None:
        self._count("polls_closed", run_until_idle(self.rt.votes.close_due, limit=100, stop=self._stopping))

    # -- scheduling -----------------------------------------------------------------------

    def start(self) -> None:
        s = self.rt.settings
        scheduler = BackgroundScheduler(
            executors={"default": APThreadPool(4)},
            timezone=s.tz,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        )
        if s.workers == "on":
            scheduler.add_job(self.deliver, "interval", seconds=0.25, id="outbox", replace_existing=True)
            scheduler.add_job(self.refresh_alerts, "interval", seconds=2, id="alerts", replace_existing=True)
            scheduler.add_job(self.analyze, "interval", seconds=2, id="analysis", replace_existing=True)
            scheduler.add_job(self.close_polls, "interval", seconds=1, id="polls", replace_existing=True)
            scheduler.add_job(self.prune_outbox, "interval", seconds=60, id="outbox-prune", replace_existing=True)
        if s.scheduler == "on" and self.digest_job is not None:
            self.digest_job(scheduler)
        # "skipped: maximum number of running instances" is the normal case when kick() asks for a
        # run while one is going on; it is not worth a warning line per click.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        scheduler.start()
        self.scheduler = scheduler
        log.info("workers started (workers=%s, scheduler=%s)", s.workers, s.scheduler)

    def kick(self, job_id: str = "outbox") -> None:
        """Run a job soon instead of at its next interval (after a user action)."""
        if self.scheduler is not None:
            try:
                self.scheduler.modify_job(job_id, next_run_time=datetime.now(self.scheduler.timezone))
            except Exception:  # noqa: BLE001 - a missing job just means it is off in this process
                pass

    def stop(self) -> None:
        self._stopping.set()  # loops end after their current unit; what is left stays in the outbox
        if self.scheduler is not None:
            # Let running units finish their transaction; what is left stays in the outbox.
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
