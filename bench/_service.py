"""Start `incidentbot serve` as a separate process for benchmarks (so client and server do not share a GIL)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def database(kind: str, tmp: Path):
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        return
    name = f"incidentbot_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


@contextmanager
def service(db_url: str, *, workers: str = "off", extra_env: dict | None = None, processes: int = 1):
    port = free_port()
    env = dict(os.environ, INCIDENTBOT_DATABASE_URL=db_url, INCIDENTBOT_INGEST_TOKENS=TOKEN,
               INCIDENTBOT_WORKERS=workers, INCIDENTBOT_SCHEDULER="off", INCIDENTBOT_LOG_LEVEL="WARNING")
    env.update(extra_env or {})  # may override the defaults above (bench/memory.py turns the scheduler on)
    # The service's log goes to a file: an unread pipe would fill and stall the server.
    log = tempfile.NamedTemporaryFile("w+", prefix="incidentbot-bench-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "incidentbot", "serve", "--port", str(port), "--no-demo",
                             "--workers", str(processes)],
                            env=env, cwd=ROOT, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("service did not start: " + Path(log.name).read_text()[-2000:])
        time.sleep(0.1)
    try:
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _family(pid: int) -> list[int]:
    """The process and its children (uvicorn's worker processes)."""
    out = [pid]
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        out += [int(c) for c in child.read_text().split()]
    return out


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def peak_rss_mib(pid: int) -> float:
    return sum(_status_kib(p, "VmHWM:") for p in _family(pid)) / 1024


def rss_mib(pid: int) -> float:
    return sum(_status_kib(p, "VmRSS:") for p in _family(pid)) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process and its children have used so far: a rate per CPU-second
    stays comparable when other work shares the machine, where a rate per wall second does not."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _family(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / tick
