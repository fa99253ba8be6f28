"""ISO weeks in the configured time zone, and the cron schedule's fire times."""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

__all__ = ["iso_week", "parse_week", "week_bounds", "last_full_week", "previous_fire_time", "DigestWeekError"]

_WEEK = re.compile(r"^\s*(\d{4})-?W(\d{1,2})\s*$", re.IGNORECASE)


class DigestWeekError(ValueError):
    """A week that is not an ISO week like 2025-W03."""


def iso_week(when: date | datetime, tz: str | ZoneInfo | None = None) -> str:
    """``2025-W03`` for a date, or for a datetime seen in ``tz`` (its own zone when None)."""
    if isinstance(when, datetime):
        if tz is not None:
            zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
            when = when.astimezone(zone) if when.tzinfo else when.replace(tzinfo=zone)
        when = when.date()
    year, week, _ = when.isocalendar()
    return f"{year:04d}-W{week:02d}"


def parse_week(text: str) -> tuple[int, int]:
    m = _WEEK.match(text or "")
    if not m:
        raise DigestWeekError(f"expected an ISO week like 2025-W03, got {text!r}")
    year, week = int(m.group(1)), int(m.group(2))
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise DigestWeekError(f"{year} has no ISO week {week}") from None
    try:
        # The week's bounds, seen from any UTC offset, must be dates too (9999-W52 ends in year 10000).
        monday - timedelta(days=1), monday + timedelta(days=8)
    except OverflowError:
        raise DigestWeekError(f"{year:04d}-W{week:02d} is outside the supported dates") from None
    return year, week


def normalize_week(text: str) -> str:
    year, week = parse_week(text)
    return f"{year:04d}-W{week:02d}"


def week_bounds(week: str, tz: str | ZoneInfo) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) of ``week`` in ``tz``, as aware datetimes in that zone."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    year, wk = parse_week(week)
    monday = date.fromisocalendar(year, wk, 1)
    start = datetime.combine(monday, time(0), tzinfo=zone)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone)
    return start, end


def day_bounds(week: str, tz: str | ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The week's seven local days (DST-correct: each is midnight to midnight in ``tz``)."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    start, _ = week_bounds(week, zone)
    days = [start.date() + timedelta(days=i) for i in range(8)]
    edges = [datetime.combine(d, time(0), tzinfo=zone) for d in days]
    return list(itertools.pairwise(edges))


def last_full_week(now: datetime, tz: str | ZoneInfo) -> str:
    """The last complete ISO week before ``now`` in ``tz`` (on a Monday: the week that just ended)."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    local = now.astimezone(zone) if now.tzinfo else now.replace(tzinfo=zone)
    return iso_week(local.date() - timedelta(days=7))


def previous_fire_time(cron: str, tz: str | ZoneInfo, now: datetime, *, within: timedelta) -> datetime | None:
    """The most recent fire time of ``cron`` (crontab, in ``tz``) that is ≤ ``now`` and no older
    than ``within``; None when there is none in that window."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    trigger = CronTrigger.from_crontab(cron, timezone=zone)
    now = now.astimezone(zone)
    start = now - within
    fire = trigger.get_next_fire_time(None, start)
    last = None
    guard = 0
    while fire is not None and fire <= now and guard < 200_000:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
        guard += 1
    return last
