"""Settings: one pydantic-settings class, built by :func:`load_settings`, never at import.

Every variable the contract names is here under exactly that name. A wrong value fails at start
with the variable's name and what it expects (:class:`SettingsError`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "SettingsError", "load_settings", "parse_duration"]

DEFAULT_SLACK_API_URL = "https://slack.com/api/"


class SettingsError(Exception):
    """A setting has a value the service cannot use; the message names the variable."""


CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
_CHANNEL_NAME = re.compile(r"#?[a-z0-9][a-z0-9._-]{0,79}")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``7d``, ``1w`` → timedelta; anything else raises ValueError."""
    m = _DURATION.match(text or "")
    if not m:
        raise ValueError(f"expected a duration like 30m, 2h, 7d or 90d, got {text!r}")
    # At most ~100 years, so that now ± the duration stays a valid datetime (mute, --closes, prune);
    # the length check comes first so that a huge number never reaches int() or timedelta().
    max_seconds = 36500 * 86400
    digits = m.group(1).lstrip("0") or "0"
    if len(digits) > 12 or int(digits) * _UNITS[m.group(2)] > max_seconds:
        raise ValueError(f"{text.strip()!r} is too long: a duration can be at most 36500d (about 100 years)")
    return timedelta(seconds=int(digits) * _UNITS[m.group(2)])


TOKEN_SCOPES = ("events", "alertmanager", "read", "metrics")


def _token_problem(token: str) -> str | None:
    """Why ``token`` can never be sent in an HTTP header, or None. Never echoes the token."""
    for i, ch in enumerate(token):
        if not ("!" <= ch <= "~"):
            what = "a space" if ch.isspace() else f"U+{ord(ch):04X}"
            return f"has {what} at position {i + 1}"
    return None


def _env(name: str, default=None, **kw):
    return Field(default, validation_alias=AliasChoices(name), **kw)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = _env("INCIDENTBOT_DATABASE_URL", "sqlite:///./incidentbot.db")
    # Comma-separated; an entry may be `source:token` to limit that token to one source
    # (`events`, `alertmanager`, `read`, `metrics`). A plain token is valid for every endpoint.
    # Printable ASCII only (an HTTP header cannot carry anything else): checked at start.
    ingest_tokens: str = _env("INCIDENTBOT_INGEST_TOKENS", "")
    slack_bot_token: str | None = _env("SLACK_BOT_TOKEN")
    slack_signing_secret: str | None = _env("SLACK_SIGNING_SECRET")
    slack_app_token: str | None = _env("SLACK_APP_TOKEN")
    slack_api_url: str = _env("SLACK_API_URL", DEFAULT_SLACK_API_URL)
    channel: str | None = _env("INCIDENTBOT_CHANNEL")
    slash_command: str = _env("INCIDENTBOT_SLASH_COMMAND", "/incident")
    # Slack user ids allowed to merge, split, resolve, mute and close others' votes.
    admins: str = _env("INCIDENTBOT_ADMINS", "")
    admin_group: str | None = _env("INCIDENTBOT_ADMIN_GROUP")
    topology: Path | None = _env("INCIDENTBOT_TOPOLOGY")
    runbooks_dir: Path = _env("INCIDENTBOT_RUNBOOKS_DIR", Path("runbooks"))
    runbook_url: str | None = _env("INCIDENTBOT_RUNBOOK_URL")
    public_url: str = _env("INCIDENTBOT_PUBLIC_URL", "http://127.0.0.1:8000")
    digest_cron: str = _env("INCIDENTBOT_DIGEST_CRON", "0 9 * * mon")
    tz: str = _env("INCIDENTBOT_TZ", "UTC")
    # Which process runs the scheduler: "on" (default) or "off". Running it in every replica is
    # safe because each unit of work is claimed in the database.
    scheduler: str = _env("INCIDENTBOT_SCHEDULER", "on")
    workers: str = _env("INCIDENTBOT_WORKERS", "on")
    log_format: str = _env("INCIDENTBOT_LOG_FORMAT", "text")
    log_level: str = _env("INCIDENTBOT_LOG_LEVEL", "INFO")
    max_batch_events: int = _env("INCIDENTBOT_MAX_BATCH_EVENTS", 5000, ge=1, le=100_000)
    max_body_bytes: int = _env("INCIDENTBOT_MAX_BODY_BYTES", 10 * 1024 * 1024, ge=1024)
    alert_update_interval: float = _env("INCIDENTBOT_ALERT_UPDATE_SECONDS", 30.0, ge=0)
    analysis_debounce: float = _env("INCIDENTBOT_ANALYSIS_DEBOUNCE_SECONDS", 10.0, ge=0)
    # The analysis reads occurrence aggregates (the whole history), at most this many rows (0: all).
    # Above the cap, small signatures keep every row and only the largest are thinned to their
    # newest rows, so a rare signal is never dropped (services/hypotheses.py _aggregate_queries).
    # The name predates the aggregates; it is kept so existing configurations keep working.
    analysis_max_events: int = _env("INCIDENTBOT_ANALYSIS_MAX_EVENTS", 300_000, ge=0)
    # Width of an aggregate's time bucket: events of one signature, job, host and versions within
    # it are one analysis record.
    aggregate_bucket_seconds: int = _env("INCIDENTBOT_AGGREGATE_BUCKET_SECONDS", 30, ge=1, le=86_400)
    allow_remote_console: bool = _env("INCIDENTBOT_ALLOW_REMOTE_CONSOLE", False)
    # New-signature alerts: at most this many per job per window, and this many in all per window
    # (roll-ups included); the rest are counted in one "N new failure modes in job X" message
    # that is edited in place. A flood of unique texts is then a few messages, not thousands.
    new_signature_alerts: int = _env("INCIDENTBOT_NEW_SIGNATURE_ALERTS", 10, ge=0)
    new_signature_alerts_total: int = _env("INCIDENTBOT_NEW_SIGNATURE_ALERTS_TOTAL", 40, ge=1)
    new_signature_window: str = _env("INCIDENTBOT_NEW_SIGNATURE_WINDOW", "10m")
    # An event time more than this ahead of receive time is stored at receive time (the sent time
    # is kept), so one wrong clock cannot set a signature's last_seen to 2199 for good. Older
    # times are history (a replayed log, a backfill) and are kept unless older than the max age.
    max_time_skew: str = _env("INCIDENTBOT_MAX_TIME_SKEW", "1d")
    max_event_age: str = _env("INCIDENTBOT_MAX_EVENT_AGE", "3650d")

    @field_validator("new_signature_window", "max_time_skew", "max_event_age")
    @classmethod
    def _check_duration(cls, v: str) -> str:
        d = parse_duration(v)
        if d.total_seconds() <= 0:
            raise ValueError(f"expected a positive duration like 10m or 1d, got {v!r}")
        return v

    @property
    def new_signature_window_td(self) -> timedelta:
        return parse_duration(self.new_signature_window)

    @property
    def max_time_skew_td(self) -> timedelta:
        return parse_duration(self.max_time_skew)

    @property
    def max_event_age_td(self) -> timedelta:
        return parse_duration(self.max_event_age)

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        if not (v.startswith("sqlite") or v.startswith("postgresql")):
            raise ValueError("expected a SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://user@host/db")
        if v.startswith("postgresql://") or v.startswith("postgres://"):
            # psycopg 3 is the installed driver; a bare postgresql:// would ask for psycopg2.
            v = "postgresql+psycopg://" + v.split("://", 1)[1]
        return v

    @field_validator("ingest_tokens")
    @classmethod
    def _check_tokens(cls, v: str) -> str:
        # A token travels in an HTTP header, which is ASCII: a token with other characters (a
        # pasted "smart" quote, a non-breaking space) could never match, so refuse it at start.
        for n, raw in enumerate(v.split(","), start=1):
            raw = raw.strip()
            if not raw:
                continue
            scope, sep, token = raw.partition(":")
            if sep and scope in TOKEN_SCOPES and not token:
                raise ValueError(f"entry {n} ({scope}:) has no token after the colon; expected SCOPE:TOKEN")
            bad = _token_problem(token if sep and scope in TOKEN_SCOPES else raw)
            if bad:
                raise ValueError(
                    f"entry {n} {bad}; expected comma-separated tokens of printable ASCII "
                    f"(letters, digits, punctuation), each optionally as SCOPE:TOKEN with SCOPE one of "
                    f"{', '.join(TOKEN_SCOPES)}"
                )
        return v

    @field_validator("slack_bot_token", "slack_signing_secret", "slack_app_token")
    @classmethod
    def _check_secret(cls, v: str | None) -> str | None:
        if v is None:
            return v
        bad = _token_problem(v.strip())
        if bad:
            raise ValueError(f"the value {bad}; expected printable ASCII as Slack shows it (no spaces or quotes)")
        return v.strip()

    @field_validator("tz")
    @classmethod
    def _check_tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"expected an IANA time zone such as UTC or Europe/London, got {v!r}") from None
        return v

    @field_validator("digest_cron")
    @classmethod
    def _check_cron(cls, v: str) -> str:
        try:
            CronTrigger.from_crontab(v)
        except ValueError as exc:
            raise ValueError(f"expected a 5-field crontab like '0 9 * * mon': {exc}") from None
        return v

    @field_validator("scheduler", "workers")
    @classmethod
    def _check_onoff(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in ("on", "off"):
            raise ValueError("expected on or off")
        return v

    @field_validator("log_format")
    @classmethod
    def _check_log_format(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in ("text", "json"):
            raise ValueError("expected text or json")
        return v

    @field_validator("slash_command")
    @classmethod
    def _check_command(cls, v: str) -> str:
        if not re.fullmatch(r"/[a-z0-9_-]{1,31}", v):
            raise ValueError("expected a slash command such as /incident")
        return v

    @field_validator("channel")
    @classmethod
    def _check_channel(cls, v: str | None) -> str | None:
        parts = [p.strip() for p in (v or "").split(",") if p.strip()]
        for p in parts:
            if not (CHANNEL_ID.fullmatch(p) or _CHANNEL_NAME.fullmatch(p)):
                raise ValueError(
                    f"{p!r} is neither a channel id (C0123ABCDEF) nor a channel name (#gpu-incidents); "
                    "several are comma-separated, the first gets alerts and polls"
                )
        return ",".join(parts) or None

    @field_validator("slack_api_url")
    @classmethod
    def _check_api_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("expected an http(s) URL such as https://slack.com/api/")
        return v if v.endswith("/") else v + "/"

    # -- derived views -------------------------------------------------------------------

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def channels(self) -> list[str]:
        """INCIDENTBOT_CHANNEL as a list (each gets a digest)."""
        return [c for c in (self.channel or "").split(",") if c]

    @property
    def alert_channel(self) -> str | None:
        """Where alerts, polls and announcements go: the first channel."""
        return self.channels[0] if self.channel else None

    @property
    def uses_real_slack(self) -> bool:
        return bool(self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token))

    def token_sources(self) -> dict[str, str | None]:
        """token → the source it is limited to (None: any)."""
        out: dict[str, str | None] = {}
        for raw in self.ingest_tokens.split(","):
            raw = raw.strip()
            if not raw:
                continue
            source, sep, token = raw.partition(":")
            if sep and source in TOKEN_SCOPES:
                out[token] = source
            else:
                out[raw] = None
        return out

    def admin_ids(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.admins.split(",") if a.strip())


_NAMES = {
    name: (str(f.validation_alias.choices[0]) if isinstance(f.validation_alias, AliasChoices) else name)
    for name, f in Settings.model_fields.items()
}


_SECRET_VARS = {"INCIDENTBOT_INGEST_TOKENS", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"}


def load_settings(**overrides) -> Settings:
    """Build settings from the environment (and `.env`), with keyword overrides for tests."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            var = _NAMES.get(field, field)
            msg = err["msg"].removeprefix("Value error, ")
            got = "" if var in _SECRET_VARS else f" (got {err.get('input')!r})"
            lines.append(f"{var}: {msg}{got}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
