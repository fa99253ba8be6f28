"""The weekly digest: what a week of failures, hypotheses and votes looked like, posted once per
configured channel and week.

* :func:`compute` gathers the week (:mod:`.compute`); :func:`render_blocks` / :func:`render_text`
  render it from the Jinja2 templates in ``templates/`` (Block Kit within Slack's limits, and
  plain text for ``incidentbot digest --preview``); :func:`preview` is the CLI's entry point.
* :func:`run_digest` is the one unit of work: it claims ``(channel, week)`` in ``DigestRun`` with
  ``INSERT … ON CONFLICT DO NOTHING`` and, in the same transaction, enqueues the post in the
  outbox. Only the inserter posts, so replicas, restarts and retries cannot double it; the outbox
  delivers it through Slack outages and crashes (it renders at delivery time).
* :func:`schedule_digest` is the one place scheduling is decided: an APScheduler cron job
  (``INCIDENTBOT_DIGEST_CRON`` in ``INCIDENTBOT_TZ``) calling :func:`scheduled_run` with the
  runtime it was given; plus :func:`catch_up` at start-up, which posts a run missed while the
  service was down if it is within :data:`GRACE`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from incidentbot.models import DigestRun, table_of
from incidentbot.services import messages
from incidentbot.services.outbox import queue
from incidentbot.services.sql import insert_for

from .compute import Digest, compute_digest, sparkline
from .render import blocks_for, text_for
from .weeks import DigestWeekError, iso_week, last_full_week, normalize_week, previous_fire_time, week_bounds

if TYPE_CHECKING:
    from incidentbot.runtime import Runtime

__all__ = [
    "compute",
    "render_blocks",
    "render_text",
    "preview",
    "run_digest",
    "schedule_digest",
    "catch_up",
    "iso_week",
    "scheduled_run",
    "channels",
    "default_week",
    "week_bounds",
    "sparkline",
    "Digest",
    "DigestWeekError",
    "GRACE",
    "JOB_ID",
]

log = logging.getLogger(__name__)

GRACE = timedelta(hours=24)
JOB_ID = "incidentbot-digest"


def channels(rt) -> list[str]:
    """INCIDENTBOT_CHANNEL as a list: a comma-separated value is several channels."""
    return list(dict.fromkeys(rt.settings.channels))


def default_week(rt) -> str:
    """The last full ISO week before now (``rt.clock()``) in INCIDENTBOT_TZ."""
    return last_full_week(rt.clock(), ZoneInfo(rt.settings.tz))


# -- computing and rendering --------------------------------------------------------------------


def compute(rt, week: str | None = None) -> Digest:
    with rt.db.read() as session:
        return compute_digest(rt, session, week)


def render_blocks(rt, week: str | None = None) -> tuple[str, list[dict]]:
    """(notification text, Block Kit blocks) for ``week`` (default: the last full week)."""
    return blocks_for(compute(rt, week), command=rt.settings.slash_command)


def render_text(rt, week: str | None = None) -> str:
    return text_for(compute(rt, week))


def preview(rt, week: str | None = None) -> str:
    """What ``incidentbot digest --preview`` prints: the plain-text digest. Posts nothing."""
    return render_text(rt, week)


# -- the unit of work ---------------------------------------------------------------------------


def run_digest(rt, *, week: str, channel: str) -> bool:
    """Claim (channel, week) and enqueue its post, atomically. True only for the one caller whose
    INSERT won; everyone else (replicas, restarts, retries) gets False and posts nothing."""
    week = normalize_week(week)
    with rt.db.write() as session:
        stmt = (
            insert_for(session, table_of(DigestRun))
            .values(
                channel=channel,
                week=week,
                claimed_at=rt.clock(),
                claimed_by=rt.worker_id[:128],
            )
            .on_conflict_do_nothing(index_elements=["channel", "week"])
            .returning(table_of(DigestRun).c.id)
        )
        # RETURNING, not rowcount: psycopg reports rowcount -1 for this statement on PostgreSQL.
        if session.execute(stmt).first() is None:
            return False
        queue(session, messages.digest(channel=channel, week=week))
    log.info("digest %s for %s claimed by %s and queued", week, channel, rt.worker_id)
    return True


def catch_up(rt, now=None) -> list[str]:
    """Run the most recent scheduled digest if it is due: the latest fire time of
    INCIDENTBOT_DIGEST_CRON (in INCIDENTBOT_TZ) at or before ``now``, if no older than
    :data:`GRACE` and not yet claimed. Returns ``"channel:week"`` for each post this call queued."""
    now = now or rt.clock()
    fired = previous_fire_time(rt.settings.digest_cron, rt.settings.tz, now, within=GRACE)
    if fired is None:
        return []
    week = last_full_week(fired, ZoneInfo(rt.settings.tz))
    return [f"{ch}:{week}" for ch in channels(rt) if run_digest(rt, week=week, channel=ch)]


# -- scheduling ---------------------------------------------------------------------------------


def scheduled_run(rt: Runtime) -> None:
    """The APScheduler job: run the due digest against ``rt``. The fire time is recomputed from the
    cron, so a late (misfired) run and a duplicate run from another replica's scheduler both land
    on the same claimed week."""
    # A few seconds of slack: the scheduler may wake a hair before its own fire time.
    posted = catch_up(rt, now=rt.clock() + timedelta(seconds=5))
    if posted:
        log.info("digest queued: %s", ", ".join(posted))


def schedule_digest(rt: Runtime, scheduler) -> None:
    """Decide the digest's schedule (the only place that does) and catch up on a missed run.

    The job lives in the scheduler's memory with the runtime it runs against (no module-level
    registry, no pickled job): a persistent job store would add nothing, because every start
    replaces the job and recomputes its next run from the cron, and a run missed while the
    service was down is :func:`catch_up`'s, below. Safe in every replica: the job only triggers
    :func:`run_digest`, whose claim is atomic."""
    s = rt.settings
    if not channels(rt):
        log.info("INCIDENTBOT_CHANNEL is not set: no weekly digest is scheduled")
        return
    scheduler.add_job(
        scheduled_run,
        trigger=CronTrigger.from_crontab(s.digest_cron, timezone=ZoneInfo(s.tz)),
        args=[rt],
        id=JOB_ID,
        name="weekly digest",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=int(GRACE.total_seconds()),
    )
    # Post a run missed while the service was down, if it is within the grace period.
    try:
        posted = catch_up(rt)
        if posted:
            log.info("digest catch-up queued: %s", ", ".join(posted))
    except Exception:  # noqa: BLE001 - never stop the service from starting over the digest
        log.exception("digest catch-up failed; the scheduled job will try again")
