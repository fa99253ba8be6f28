"""The shell of ``incidentbot ingest``: read files (once, or following them), turn their lines into
events with the pure parsers of ``ingest/``, deliver them, keep a follow position.

Where events go (:func:`choose_target`), in this order, and said on stderr every time:

1. ``--url URL``: that service;
2. ``INCIDENTBOT_DATABASE_URL`` set (environment or ``.env``): that database;
3. a service answering ``/healthz`` at ``$INCIDENTBOT_URL`` (default ``http://127.0.0.1:8000``): post there;
4. ``./incidentbot.db`` already there: that database;
5. otherwise nothing is written and the command exits 2, saying so: a mistyped folder must not
   grow a fresh database that "accepted" the events.

Follow mode keeps, per followed file (keyed by device and inode), the offset below which every line
is done and the offsets of done lines above it (records of other ranks can still be open there).
It is written atomically after each delivered batch, so a restart re-reads only unfinished lines
and sends no delivered record again.
"""

from __future__ import annotations

import glob as globmod
import hashlib
import json
import os
import re
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from incidentbot.ingest import from_torchelastic, validate_batch
from incidentbot.ingest.logfiles import LogParser, LogRecord, looks_like_jsonl, to_event
from incidentbot.settings import load_settings

__all__ = [
    "choose_target",
    "ingest_once",
    "follow",
    "default_state_path",
    "Target",
    "TargetError",
    "HttpTarget",
    "DatabaseTarget",
    "ingest_torchelastic",
    "Tally",
]

MAX_LINE_BYTES = 64 * 1024
_SLURM_OUTPUT = re.compile(r"^slurm-(\d+)(?:_\d+)?\.out$")
DEFAULT_URL = "http://127.0.0.1:8000"


class TargetError(Exception):
    """Nowhere to send events, or the service refuses them for good; the message says why."""


class Target(Protocol):
    where: str

    def send(self, events: list[dict]) -> tuple[int, int, list[tuple[int, str]]]:
        """(accepted, duplicates, [(index, error)...] of events refused as malformed)."""
        ...


class DatabaseTarget:
    def __init__(self, runtime, where: str):
        self.rt, self.where = runtime, where

    def send(self, events: list[dict]) -> tuple[int, int, list[tuple[int, str]]]:
        good, errors = validate_batch(events)
        bad = {e.index: f"{e.field or 'event'}: {e.message}" for e in errors}
        if bad:
            good, _ = validate_batch([e for i, e in enumerate(events) if i not in bad])
        if not good:
            return 0, 0, sorted(bad.items())
        r = self.rt.ingest.ingest(good, source="cli")
        return r.accepted, r.duplicates, sorted(bad.items())


class HttpTarget:
    """POST /v1/events with retries: 5xx, 429 and network errors are retried (forever when
    ``attempts`` is None, as a sidecar should); 4xx other than 422 is a refusal."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        attempts: int | None = 6,
        transport=None,
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ):
        # Only the chosen target's stack loads: HTTP delivery needs httpx, database delivery the service.
        import httpx

        self.should_stop = should_stop
        self.where = f"the service at {url}"
        self.attempts, self.sleep, self.log = attempts, sleep, log or (lambda s: None)
        self.client = httpx.Client(
            base_url=url.rstrip("/"),
            timeout=60,
            transport=transport,
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )

    def send(self, events: list[dict]) -> tuple[int, int, list[tuple[int, str]]]:
        _, errors = validate_batch(events)  # the service refuses a whole batch for one bad event: drop them first
        bad = {e.index: f"{e.field or 'event'}: {e.message}" for e in errors}
        good = [e for i, e in enumerate(events) if i not in bad]
        if not good:
            return 0, 0, sorted(bad.items())
        attempt = 0
        while True:
            attempt += 1
            try:
                r = self.client.post("/v1/events", json={"events": good})
            except Exception as exc:  # noqa: BLE001 - any network error is retried; the batch is kept
                err = f"{type(exc).__name__}: {exc}"
            else:
                if r.status_code == 202:
                    body = r.json()
                    return body["accepted"], body["duplicates"], sorted(bad.items())
                if r.status_code < 500 and r.status_code != 429:
                    raise TargetError(f"the service refused the batch: HTTP {r.status_code}: {r.text[:500]}")
                err = f"HTTP {r.status_code}"
            if self.should_stop():
                raise TargetError(f"stopped before the batch was delivered ({err}); it is sent after the restart")
            if self.attempts is not None and attempt >= self.attempts:
                raise TargetError(f"could not deliver a batch after {attempt} attempts: {err}")
            delay = min(0.5 * 2 ** (attempt - 1), 30.0)
            self.log(f"delivery failed ({err}); retrying in {delay:.1f}s, nothing is lost")
            end = time.monotonic() + delay
            while time.monotonic() < end and not self.should_stop():
                self.sleep(min(0.2, delay))


def _mask(url: str) -> str:
    # SQLAlchemy loads only when events go to a database (HTTP delivery never needs it).
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return url


def _service_answers(url: str) -> bool:
    # Only the chosen target's stack loads: HTTP delivery needs httpx, database delivery the service.
    import httpx

    try:
        return httpx.get(url.rstrip("/") + "/healthz", timeout=1.5).status_code == 200
    except Exception:  # noqa: BLE001 - "no service there" whatever the reason
        return False


def _token(explicit: str | None, settings) -> str | None:
    return (
        explicit or os.environ.get("INCIDENTBOT_TOKEN") or (settings.ingest_tokens.split(",")[0].split(":")[-1] or None)
    )


def choose_target(
    *,
    url: str | None,
    token: str | None,
    follow: bool,
    log: Callable[[str], None],
    should_stop: Callable[[], bool] = lambda: False,
) -> Target:
    """The rule in the module docstring. Raises TargetError when there is nowhere to write."""
    settings = load_settings()
    attempts = None if follow else 6
    if url:
        return HttpTarget(url, _token(token, settings), attempts=attempts, log=log, should_stop=should_stop)
    if "database_url" in settings.model_fields_set:
        return _database(settings, f"the database {_mask(settings.database_url)} (INCIDENTBOT_DATABASE_URL)")
    default = os.environ.get("INCIDENTBOT_URL") or DEFAULT_URL
    if _service_answers(default):
        return HttpTarget(default, _token(token, settings), attempts=attempts, log=log, should_stop=should_stop)
    if Path("incidentbot.db").is_file():
        return _database(settings, f"the database {Path('incidentbot.db').resolve()} (found in this folder)")
    raise TargetError(
        f"nowhere to send events: no --url, INCIDENTBOT_DATABASE_URL is not set, no service answers at {default} "
        f"(INCIDENTBOT_URL), and there is no incidentbot.db in {Path.cwd()}. Pass --url http://HOST:8000, or set "
        "INCIDENTBOT_DATABASE_URL (sqlite:///./incidentbot.db creates one here)."
    )


def _database(settings, where: str) -> DatabaseTarget:
    # The whole service (database, analysis) loads only when events go straight to a database.
    from incidentbot.runtime import build_runtime

    return DatabaseTarget(build_runtime(settings, migrate=True), where)


# -- reading ----------------------------------------------------------------------------------


@dataclass
class Unit:
    """A finished piece of a file: a record (an event, or skipped) or a JSON line."""

    lineno: int
    start: int
    offsets: tuple[int, ...]
    event: dict | None
    label: str  # the event's kind, or why it was skipped


@dataclass
class Tally:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    lines: int = 0
    files: int = 0
    kinds: Counter = field(default_factory=Counter)
    skipped_why: Counter = field(default_factory=Counter)

    def as_summary(self) -> dict:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "skipped": self.skipped,
        }

    def describe(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in self.kinds.most_common())
        why = ", ".join(f"{n} {k}" for k, n in self.skipped_why.most_common())
        return (
            f"{self.files} file(s), {self.lines:,} lines: {sum(self.kinds.values()):,} events ({kinds or 'none'}); "
            f"{self.skipped:,} records skipped as not failures ({why or 'none'}); accepted {self.accepted:,}, "
            f"duplicates {self.duplicates:,}, rejected {self.rejected:,}"
        )


@dataclass
class Defaults:
    job_id: str | None = None
    host: str | None = None
    rank: int | None = None


def _is_journal(item: dict) -> bool:
    return "MESSAGE" in item and ("__REALTIME_TIMESTAMP" in item or "_HOSTNAME" in item or "__CURSOR" in item)


class FileReader:
    """One file (or stdin) read from an offset: complete lines → units. Plain text or JSON lines,
    decided by the first non-blank line."""

    def __init__(
        self,
        stream: IO[bytes],
        *,
        name: str,
        identity: str,
        defaults: Defaults,
        offset: int = 0,
        done: set[int] | None = None,
        year: int | None = None,
        mode: str | None = None,
        log: Callable[[str], None],
    ):
        self.stream, self.name, self.identity, self.defaults = stream, name, identity, defaults
        self.offset = offset  # where the next line starts
        self.done = done if done is not None else set()
        self.parser = LogParser(year=year)
        self.mode = mode  # "jsonl" | "text" | None (not decided yet)
        self.lineno = 0
        self.partial = b""
        self.log = log
        slurm = _SLURM_OUTPUT.match(Path(name).name)  # sbatch's default slurm-<jobid>.out names the job
        self.job_id = defaults.job_id or (slurm[1] if slurm else Path(name).stem) or "unknown"

    def read_available(self, *, final: bool, max_chunks: int | None = None) -> tuple[list[Unit], int]:
        """Units from the lines that arrived; a last line without a newline waits unless final."""
        units: list[Unit] = []
        lines = 0
        chunks = 0
        while max_chunks is None or chunks < max_chunks:
            chunks += 1
            # read1: what is there now, so a pipe (``tail -f x | incidentbot ingest -``) is not held back
            chunk = self.stream.read1(1 << 20) if hasattr(self.stream, "read1") else self.stream.read(1 << 20)
            if not chunk:
                break
            data = self.partial + chunk
            pos = 0
            while True:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    break
                units.extend(self._line(data[pos : nl + 1]))
                lines += 1
                pos = nl + 1
            self.partial = data[pos:]
            if len(self.partial) > MAX_LINE_BYTES:  # a runaway line: take what we have as a line
                units.extend(self._line(self.partial))
                lines += 1
                self.partial = b""
        if final and self.partial:
            units.extend(self._line(self.partial))
            lines += 1
            self.partial = b""
        return units, lines

    def _line(self, raw: bytes) -> list[Unit]:
        start = self.offset
        self.offset += len(raw)
        self.lineno += 1
        if start in self.done:
            return []  # delivered before a restart
        text = raw[:MAX_LINE_BYTES].decode("utf-8", "replace")
        if self.mode is None:
            if not text.strip():
                return []
            self.mode = "jsonl" if looks_like_jsonl(text) else "text"
        if self.mode == "text":
            return self._records(self.parser.feed(text, offset=start, end=self.offset, lineno=self.lineno))
        s = text.strip()
        if not s:
            return []
        try:
            item = json.loads(s)
        except (ValueError, RecursionError) as exc:
            self.log(f"{self.name}: line {self.lineno}: not JSON: {str(exc)[:120]}")
            return [Unit(self.lineno, start, (start,), None, "rejected")]
        if isinstance(item, dict) and _is_journal(item):
            return self._records(self.parser.feed_journal(item, offset=start, end=self.offset, lineno=self.lineno))
        if isinstance(item, dict):
            d = self.defaults
            for key, value in (("job_id", d.job_id), ("host", d.host), ("rank", d.rank)):
                if value is not None:
                    item.setdefault(key, value)
            item.setdefault(
                "event_id", "lj:" + hashlib.sha256(f"{self.identity}|{start}|{s}".encode()).hexdigest()[:40]
            )
        return [Unit(self.lineno, start, (start,), item, "event")]

    def _records(self, records: list[LogRecord]) -> list[Unit]:
        out = []
        for r in records:
            event = None
            if r.kind is not None:
                event = to_event(
                    r,
                    identity=self.identity,
                    job_id=self.job_id,
                    host=self.defaults.host,
                    rank=self.defaults.rank,
                    source=self.name,
                )
            out.append(Unit(r.line, r.start, r.offsets, event, r.kind or r.why))
        return out

    def flush(self) -> list[Unit]:
        return self._records(self.parser.flush())

    def commit_offset(self, inflight: list[Unit]) -> int:
        """Every line below this offset is done (delivered or skipped)."""
        candidates = [self.offset]
        pending = self.parser.pending_start()
        if pending is not None:
            candidates.append(pending)
        candidates.extend(u.start for u in inflight)
        return min(candidates)


def _deliver(target: Target, units: list[Unit], tally: Tally, *, name: str, log: Callable[[str], None]) -> None:
    """Count skipped units, send the events; raises TargetError (nothing counted as done then)."""
    events = [u for u in units if u.event is not None]
    accepted = duplicates = 0
    bad: list[tuple[int, str]] = []
    if events:
        accepted, duplicates, bad = target.send([u.event for u in events])  # type: ignore[misc]
    for u in units:  # counted only once the batch is delivered, so a retried batch is counted once
        if u.event is None:
            if u.label == "rejected":
                tally.rejected += 1
            else:
                tally.skipped += 1
                tally.skipped_why[u.label] += 1
    for index, error in bad:
        log(f"{name}: line {events[index].lineno}: {error}")
    bad_index = {i for i, _ in bad}
    for i, u in enumerate(events):
        if i not in bad_index:
            tally.kinds[u.event.get("kind") or "event"] += 1  # type: ignore[union-attr]
    tally.accepted += accepted
    tally.duplicates += duplicates
    tally.rejected += len(bad)


def _identity(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


def expand(pattern: str) -> list[str]:
    if pattern == "-":
        return ["-"]
    if globmod.has_magic(pattern):
        return sorted(p for p in globmod.glob(pattern, recursive=True) if os.path.isfile(p))
    return [pattern]


def _year_of(st: os.stat_result | None) -> int:
    return time.gmtime(st.st_mtime if st else time.time()).tm_year


def ingest_once(
    pattern: str,
    *,
    target: Target,
    defaults: Defaults,
    batch: int,
    log: Callable[[str], None],
    progress: Callable[[Tally, bool], None],
) -> Tally:
    tally = Tally()
    paths = expand(pattern)
    if not paths:
        raise TargetError(f"no file matches {pattern!r}")
    for path in paths:
        if path == "-":
            stream, st, identity = sys.stdin.buffer, None, "stdin"
        else:
            try:
                stream = open(path, "rb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise TargetError(f"cannot read {path}: {exc.strerror}") from None
            st = os.fstat(stream.fileno())
            identity = _identity(st)
        tally.files += 1
        reader = FileReader(
            stream,
            name=path if path != "-" else "stdin",
            identity=identity,
            defaults=defaults,
            year=_year_of(st),
            log=log,
        )
        queue: list[Unit] = []
        while True:
            units, lines = reader.read_available(final=False, max_chunks=1)
            tally.lines += lines
            queue.extend(units)
            if not units and not lines:
                break
            while len(queue) >= batch or (queue and path == "-"):  # a pipe's events go when they come
                _deliver(target, queue[:batch], tally, name=reader.name, log=log)
                del queue[:batch]
                progress(tally, False)
        units, lines = reader.read_available(final=True)
        tally.lines += lines
        queue.extend(units)
        queue.extend(reader.flush())
        for i in range(0, len(queue), batch):
            _deliver(target, queue[i : i + batch], tally, name=reader.name, log=log)
        progress(tally, False)
        if stream is not sys.stdin.buffer:
            stream.close()
    return tally


# -- follow -----------------------------------------------------------------------------------


def default_state_path(pattern: str) -> Path:
    """``$XDG_STATE_HOME/incidentbot/follow-<hash of the pattern>.json`` (``~/.local/state`` when unset)."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    key = hashlib.sha256(os.path.abspath(pattern).encode()).hexdigest()[:16]
    return base / "incidentbot" / f"follow-{key}.json"


def _load_state(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"version": 1, "files": {}}
    except (OSError, ValueError) as exc:
        raise TargetError(f"the follow state file {path} cannot be read ({exc}); move it away to start over") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise TargetError(f"the follow state file {path} is not one incidentbot wrote; move it away to start over")
    return data


def _save_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _head(stream: IO[bytes], n: int = 256) -> tuple[str, int]:
    pos = stream.tell()
    stream.seek(0)
    data = stream.read(n)
    stream.seek(pos)
    return hashlib.sha256(data).hexdigest()[:16], len(data)


def _pread_hash(stream: IO[bytes], n: int) -> str:
    return hashlib.sha256(os.pread(stream.fileno(), n, 0)).hexdigest()[:16]


@dataclass
class _Followed:
    path: str
    key: str
    reader: FileReader
    generation: int
    head: tuple[str, int]
    last_data: float
    inflight: list[Unit] = field(default_factory=list)


def follow(
    pattern: str,
    *,
    target: Target,
    defaults: Defaults,
    batch: int,
    state_path: Path,
    log: Callable[[str], None],
    progress: Callable[[Tally, bool], None],
    poll: float = 0.5,
    flush_after: float = 3.0,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
) -> Tally:
    """Tail files matching ``pattern`` until ``should_stop``; rotation (a renamed file is read to
    its end through the open handle) and truncation (read again from 0, as a new generation)."""
    state = _load_state(state_path)
    saved: dict[str, Any] = state["files"]
    tally = Tally()
    followed: dict[str, _Followed] = {}

    def open_file(path: str) -> None:
        try:
            stream = open(path, "rb")  # noqa: SIM115 - kept open while followed
        except OSError:
            return
        st = os.fstat(stream.fileno())
        key = _identity(st)
        if key in followed:
            stream.close()
            return
        entry = saved.get(key) or {}
        head = _head(stream)
        offset, done, generation = 0, set(), 0
        if entry:
            generation = int(entry.get("generation", 0))
            old_hash, old_len = entry.get("head", ["", 0])
            if st.st_size >= entry.get("offset", 0) and _head(stream, old_len)[0] == old_hash:
                offset, done = int(entry.get("offset", 0)), set(entry.get("done", []))
            else:
                generation += 1  # the inode was reused or the file rewritten: a new file
                log(f"{path}: not the file the state remembers (rewritten or replaced); reading it from the start")
        stream.seek(offset)
        reader = FileReader(
            stream,
            name=path,
            identity=f"{key}#{generation}",
            defaults=defaults,
            offset=offset,
            done=done,
            year=_year_of(st),
            log=log,
        )
        followed[key] = _Followed(path, key, reader, generation, head, clock())
        tally.files += 1
        log(f"following {path}" + (f" from byte {offset:,}" if offset else ""))

    def record(f: _Followed) -> None:
        r = f.reader
        commit = r.commit_offset(f.inflight)
        r.done = {o for o in r.done if o >= commit}
        saved[f.key] = {
            "path": f.path,
            "offset": commit,
            "done": sorted(r.done),
            "generation": f.generation,
            "head": list(f.head),
        }

    last_progress = 0.0
    while True:
        stopping = should_stop()
        if not stopping:
            for path in expand(pattern):
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if _identity(st) not in followed:
                    open_file(path)
        changed = False
        for key, f in list(followed.items()):
            r = f.reader
            try:
                size = os.fstat(r.stream.fileno()).st_size
            except OSError:
                size = r.offset
            rewritten = size < r.offset or (f.head[1] and _pread_hash(r.stream, f.head[1]) != f.head[0])
            if rewritten:  # truncated in place (copytruncate) or rewritten: a new generation from byte 0
                log(f"{f.path}: truncated or rewritten; reading it again from the start")
                f.generation += 1
                r.stream.seek(0)
                f.reader = r = FileReader(
                    r.stream,
                    name=f.path,
                    identity=f"{key}#{f.generation}",
                    defaults=defaults,
                    year=r.parser.year,
                    log=log,
                )
                f.head = _head(r.stream)
                f.inflight.clear()
            if r.offset < 256 and f.head[1] < 256:
                f.head = _head(r.stream)
            units, lines = r.read_available(final=False)
            tally.lines += lines
            now = clock()
            if lines:
                f.last_data = now
            try:
                gone = os.stat(f.path).st_ino != int(key.split(":")[1])
            except OSError:
                gone = True
            if (now - f.last_data >= flush_after or gone) and not stopping:
                more, lines = r.read_available(final=gone)
                tally.lines += lines
                units.extend(more)
                units.extend(r.flush())
            f.inflight.extend(units)
            while f.inflight:
                chunk = f.inflight[:batch]
                try:
                    _deliver(target, chunk, tally, name=f.path, log=log)
                except TargetError:
                    record(f)
                    _save_state(state_path, state)
                    if should_stop():
                        for g in followed.values():
                            record(g)
                        _save_state(state_path, state)
                        return tally
                    raise
                for u in chunk:
                    r.done.update(u.offsets)
                del f.inflight[: len(chunk)]
                changed = True
            if units or lines or changed:
                record(f)
            if gone and r.parser.pending_start() is None and not r.partial:
                log(f"{f.path}: rotated away and read to its end")
                r.stream.close()
                del followed[key]
                saved.pop(key, None)
                changed = True
        if changed:
            _save_state(state_path, state)
        if clock() - last_progress > 2 or stopping:
            progress(tally, False)
            last_progress = clock()
        if stopping:
            for f in followed.values():
                record(f)
                f.reader.stream.close()
            _save_state(state_path, state)
            return tally
        time.sleep(poll)


# -- torchelastic -----------------------------------------------------------------------------


def ingest_torchelastic(
    path: str, *, target: Target, job_id: str | None, host: str | None, rank: int | None, log: Callable[[str], None]
) -> Tally:
    """One error file, or every ``error.json`` under a directory (a torchelastic log dir)."""
    tally = Tally()
    p = Path(path)
    files = sorted(p.rglob("error.json")) if p.is_dir() else [p]
    if not files:
        raise TargetError(f"no error.json under {path}")
    host = host or socket.gethostname()
    units = []
    for f in files:
        tally.files += 1
        try:
            event = from_torchelastic(
                f.read_bytes(), job_id=job_id or os.environ.get("TORCHELASTIC_RUN_ID"), rank=rank, host=host, path=f
            )
        except (OSError, ValueError) as exc:
            log(f"{f}: {exc}")
            units.append(Unit(1, 0, (0,), None, "rejected"))
            continue
        units.append(Unit(1, 0, (0,), event, "crash"))
    _deliver(target, units, tally, name=path, log=log)
    return tally
