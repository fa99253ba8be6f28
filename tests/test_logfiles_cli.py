"""`incidentbot ingest` on plain log files, end to end: real files, a real database, a real service
on loopback; --follow stopped and restarted loses nothing and sends nothing twice; where it writes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from incidentbot.logship import Defaults, HttpTarget, Tally, TargetError, ingest_once
from tests.conftest import ROOT, free_port

DATA = Path(__file__).parent / "data"


def run(args, *, env, cwd=ROOT, input=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "incidentbot", "ingest", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        input=input,
        timeout=timeout,
    )


def base_env(**kw) -> dict:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "INCIDENTBOT_URL": f"http://127.0.0.1:{free_port()}",
    }
    env.update(kw)
    return env


def all_events(url: str) -> list[dict]:
    out, cursor = [], None
    while True:
        body = httpx.get(
            f"{url}/v1/events",
            params={"limit": 500, **({"cursor": cursor} if cursor else {})},
            headers={"Authorization": "Bearer test-token"},
        ).json()
        out += body["events"]
        cursor = body.get("next_cursor")
        if not cursor:
            return out


def test_every_format_into_the_database_and_again_stores_nothing_new(tmp_path, db_url):
    logs = tmp_path / "logs"
    shutil.copytree(DATA / "logs", logs)
    shutil.copy(DATA / "torchrun" / "stderr.txt", logs / "torchrun.log")
    (logs / "README.md").unlink()
    env = base_env(INCIDENTBOT_DATABASE_URL=db_url)
    out = run([str(logs / "*")], env=env)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    # nccl 2, watchdog 5, syslog 3, short-iso 2, journal 3, dmesg 4, slurm 4, torchrun 14
    assert summary["accepted"] == 37 and summary["rejected"] == 0 and summary["skipped"] > 10
    assert "sending to the database" in out.stderr and "8 file(s)" in out.stderr and "records skipped" in out.stderr
    again = run([str(logs / "*")], env=env)
    assert json.loads(again.stdout.strip().splitlines()[-1])["duplicates"] == 37

    from incidentbot.db import Database
    from incidentbot.models import Event
    from sqlmodel import Session, select

    db = Database(db_url)
    with Session(db.engine) as s:
        rows = s.exec(select(Event)).all()
    db.dispose()
    by_text = {r.message.splitlines()[0]: r for r in rows}
    slurm = by_text["srun: error: gpu-node11: task 3: Exited with exit code 1"]
    assert slurm.job_id == "884211" and slurm.host == "gpu-node11" and slurm.rank == 3
    xid = by_text[
        "NVRM: Xid (PCI:0000:3b:00): 48, pid=2201, name=python, An uncorrectable double bit error (DBE) has been "
        "detected on GPU in the framebuffer at partition 6, subpartition 0."
    ]
    assert xid.host == "gpu-node08" and xid.job_id == "journal-short-iso"
    tb = [r for r in rows if r.job_id == "torchrun" and r.rank == 1 and "KeyError" in r.message]
    assert len(tb) == 2 and all("direct cause" in r.message for r in tb)


def test_flags_fill_what_the_text_lacks_and_stdin_works(tmp_path, db_url):
    env = base_env(INCIDENTBOT_DATABASE_URL=db_url)
    text = "RuntimeError: CUDA error: an illegal memory access was encountered\n[rank7]: torch.OutOfMemoryError: CUDA out of memory.\n"
    out = run(["-", "--job-id", "run-5", "--host", "h5", "--rank", "2"], env=env, input=text)
    assert out.returncode == 0, out.stderr
    from incidentbot.db import Database
    from incidentbot.models import Event
    from sqlmodel import Session, select

    db = Database(db_url)
    with Session(db.engine) as s:
        rows = sorted(s.exec(select(Event)).all(), key=lambda r: r.message)
    db.dispose()
    assert [(r.job_id, r.host, r.rank) for r in rows] == [("run-5", "h5", 2), ("run-5", "h5", 7)]


def test_without_a_url_or_database_it_refuses_and_creates_nothing(tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    log = DATA / "logs" / "nccl.log"
    out = run([str(log)], env=base_env(), cwd=folder)
    assert out.returncode == 2
    assert "nowhere to send events" in out.stderr and "INCIDENTBOT_DATABASE_URL" in out.stderr and "--url" in out.stderr
    assert list(folder.iterdir()) == []  # no ./incidentbot.db appeared


def test_without_a_url_it_names_the_database_it_found_here(tmp_path, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the ./incidentbot.db rule is about SQLite files")
    folder = tmp_path / "here"
    folder.mkdir()
    shutil.copy(db_url.removeprefix("sqlite:///"), folder / "incidentbot.db")
    out = run([str(DATA / "logs" / "nccl.log")], env=base_env(), cwd=folder)
    assert out.returncode == 0, out.stderr
    assert f"the database {folder / 'incidentbot.db'} (found in this folder)" in out.stderr


def test_without_a_url_it_posts_to_the_service_at_the_default_url(live_server, tmp_path):
    folder = tmp_path / "node"
    folder.mkdir()
    env = base_env(INCIDENTBOT_URL=live_server.url, INCIDENTBOT_TOKEN="test-token")
    out = run([str(DATA / "logs" / "nccl.log")], env=env, cwd=folder)
    assert out.returncode == 0, out.stderr
    assert f"sending to the service at {live_server.url}" in out.stderr
    assert len(all_events(live_server.url)) == 2 and list(folder.iterdir()) == []


def test_http_target_retries_503_and_network_errors_without_loss():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content)["events"])
        if len(calls) == 1:
            raise httpx.ConnectError("connection refused")
        if len(calls) == 2:
            return httpx.Response(503)
        return httpx.Response(202, json={"accepted": len(calls[-1]), "duplicates": 0})

    target = HttpTarget("http://svc", "t", transport=httpx.MockTransport(handler), sleep=lambda s: None)
    log = DATA / "logs" / "nccl.log"
    tally = ingest_once(
        str(log), target=target, defaults=Defaults(), batch=500, log=lambda s: None, progress=lambda t, f: None
    )
    assert tally.accepted == 2 and len(calls) == 3 and calls[0] == calls[2]
    refusing = HttpTarget(
        "http://svc",
        "t",
        transport=httpx.MockTransport(lambda r: httpx.Response(401, text="bad token")),
        sleep=lambda s: None,
    )
    with pytest.raises(TargetError, match="HTTP 401"):
        ingest_once(
            str(log), target=refusing, defaults=Defaults(), batch=500, log=lambda s: None, progress=lambda t, f: None
        )
    assert Tally().as_summary() == {"accepted": 0, "duplicates": 0, "rejected": 0, "skipped": 0}


# -- follow ---------------------------------------------------------------------------------------

TB = (
    '[rank{r}]: Traceback (most recent call last):\n[rank{r}]:   File "train.py", line {n}, in step\n'
    "[rank{r}]:     loss.backward()\n[rank{r}]: RuntimeError: CUDA error: an illegal memory access was encountered (step {n})\n"
)


def block(n: int) -> str:
    """Rank 0 and 1 interleaving: an INFO line, a traceback each (interleaved line by line), a WARN."""
    a, b = TB.format(r=0, n=n).splitlines(True), TB.format(r=1, n=n).splitlines(True)
    mixed = "".join(x + y for x, y in zip(a, b, strict=True))
    return f"[rank0]: step {n} loss 2.0\n{mixed}host1:100:{n} [0] NCCL WARN Net : Connection closed by remote peer (step {n})\n"


def start_follow(pattern, url, state, env):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "incidentbot",
            "ingest",
            pattern,
            "--follow",
            "--url",
            url,
            "--token",
            "test-token",
            "--state",
            str(state),
            "--poll",
            "0.05",
            "--flush-after",
            "0.5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def wait_for(url, n, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = all_events(url)
        if len(events) >= n:
            return events
        time.sleep(0.1)
    raise AssertionError(f"only {len(all_events(url))} of {n} events arrived")


def stop(proc):
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


def test_follow_restart_rotation_truncation_lose_nothing_and_send_nothing_twice(live_server, tmp_path):
    logs = tmp_path / "node"
    logs.mkdir()
    state = tmp_path / "state" / "follow.json"
    env = base_env()
    train = logs / "train.log"
    train.write_text(block(1))
    proc = start_follow(str(logs / "*.log"), live_server.url, state, env)
    try:
        wait_for(live_server.url, 3)
        with train.open("a") as fh:  # a line at a time, as a process writes
            for line in block(2).splitlines(True):
                fh.write(line)
                fh.flush()
                time.sleep(0.01)
        wait_for(live_server.url, 6)
        # Half of a traceback, then stop: the unfinished record must come after the restart, whole.
        half = TB.format(r=0, n=3).splitlines(True)
        with train.open("a") as fh:
            fh.write("".join(half[:2]))
        time.sleep(0.3)
    finally:
        first, err = stop(proc)
    assert first["duplicates"] == 0 and first["accepted"] == 6, err
    assert json.loads(state.read_text())["files"]

    with train.open("a") as fh:
        fh.write("".join(half[2:]))
        fh.write(block(4))
    (logs / "second.log").write_text(block(5))  # a new file matching the glob
    proc = start_follow(str(logs / "*.log"), live_server.url, state, env)
    try:
        wait_for(live_server.url, 6 + 1 + 3 + 3)
        train.rename(logs / "train.log.1")  # rotation: the old file is read to its end, the new one from 0
        with (logs / "train.log.1").open("a") as fh:
            fh.write(block(6))
        (logs / "train.log").write_text(block(7))
        wait_for(live_server.url, 13 + 3 + 3)
        (logs / "second.log").write_text(block(8))  # truncated and rewritten in place
        events = wait_for(live_server.url, 19 + 3)
        time.sleep(1.0)
    finally:
        second, err = stop(proc)
    events = all_events(live_server.url)
    assert second["duplicates"] == 0, err
    assert len(events) == 22 == first["accepted"] + second["accepted"]
    texts = sorted(e["event_id"] for e in events)
    assert len(set(texts)) == len(texts)
    # Every traceback of every step and rank arrived whole, once.
    got = httpx.get(f"{live_server.url}/v1/signatures", headers={"Authorization": "Bearer test-token"}).json()[
        "signatures"
    ]
    assert sum(s["count"] for s in got) == 22
    assert "rotated away and read to its end" in err and "truncated" in err


def test_follow_state_file_that_is_not_ours_is_refused(tmp_path, live_server):
    state = tmp_path / "state.json"
    state.write_text("[1, 2]")
    (tmp_path / "a.log").write_text("x\n")
    proc = start_follow(str(tmp_path / "a.log"), live_server.url, state, base_env())
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "is not one incidentbot wrote" in err
