"""torchelastic error files: the real files of a torchrun run (tests/data/torchrun), a whole log
directory through the CLI, idempotency, and a real torchrun run when torch is installed somewhere."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from incidentbot.ingest import from_torchelastic
from incidentbot.ingest.torchelastic import ErrorFilePlace, place_from_path
from tests.conftest import ROOT, free_port

DATA = Path(__file__).parent / "data" / "torchrun"
LOGDIR = DATA / "logdir"

PLACES = [
    ("logs/job42_iwzyy02b/attempt_1/0/error.json", ErrorFilePlace(attempt=1, local_rank=0, run_id="job42")),
    (
        "/tmp/torchelastic_k2j3/none_zfqx3oe1/attempt_0/7/error.json",
        ErrorFilePlace(attempt=0, local_rank=7, run_id="none"),
    ),
    ("/x/my_run_id_abcd1234/attempt_12/3/error.json", ErrorFilePlace(attempt=12, local_rank=3, run_id="my_run_id")),
    ("attempt_2/5/error.json", ErrorFilePlace(attempt=2, local_rank=5, run_id=None)),
]
# Known wrong: paths that only look like the layout.
NOT_PLACES = ["error.json", "/data/attempt_x/1/error.json", "/data/attempt_1/rank1/error.json", "/data/3/error.json"]


@pytest.mark.parametrize("path,place", PLACES)
def test_place_from_path(path, place):
    assert place_from_path(path) == place


@pytest.mark.parametrize("path", NOT_PLACES)
def test_paths_that_are_not_the_layout(path):
    assert place_from_path(path) == ErrorFilePlace()


def test_real_error_files_of_a_torchrun_run():
    files = sorted(LOGDIR.rglob("error.json"))
    assert len(files) == 4
    events = [from_torchelastic(f.read_bytes(), host="node1", path=f) for f in files]
    by_place = {(e["attributes"]["attempt"], e["attributes"]["local_rank"]): e for e in events}
    root = by_place[(1, 1)]
    assert root["job_id"] == "job42" and root["attributes"]["run_id"] == "job42" and root["rank"] == 1
    assert root["message"].startswith("Traceback (most recent call last):") and "KeyError: 'shard-1'" in root["message"]
    assert root["message"].count("RuntimeError: rank 1: CUDA error") == 1 and root["time"].startswith("2026-")
    peer = by_place[(0, 0)]
    assert peer["rank"] == 0 and "Connection closed by peer" in peer["message"]  # rank from the path
    assert len({e["event_id"] for e in events}) == 4
    again = from_torchelastic((LOGDIR / files[0].relative_to(LOGDIR)).read_text(), host="node1", path=files[0])
    assert again["event_id"] == events[0]["event_id"]


def test_rank_the_message_names_wins_and_flags_fill_the_rest():
    text = json.dumps(
        {"message": {"message": "[Rank 12] Watchdog caught collective operation timeout", "extraInfo": {}}}
    )
    ev = from_torchelastic(text, rank=3, path="run_abcdefgh/attempt_0/4/error.json")
    assert ev["rank"] == 12 and ev["attributes"]["local_rank"] == 4 and ev["job_id"] == "run"
    bare = from_torchelastic(json.dumps({"message": "boom"}), rank=3, job_id="j")
    assert bare["rank"] == 3 and bare["job_id"] == "j" and "attempt" not in bare["attributes"]
    for bad in ("not json", "[]", '{"msg": 1}'):
        with pytest.raises(ValueError, match="not a torchelastic error file"):
            from_torchelastic(bad)


def _cli(args, env, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "incidentbot", "ingest", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_a_whole_log_directory_twice_is_stored_once_with_the_hostname(tmp_path, live_server):
    logdir = tmp_path / "logdir"
    shutil.copytree(LOGDIR, logdir)
    env = {"PATH": "/usr/bin:/bin", "INCIDENTBOT_URL": f"http://127.0.0.1:{free_port()}"}
    args = ["--torchelastic", str(logdir), "--url", live_server.url, "--token", "test-token"]
    out = _cli(args, env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "accepted": 4,
        "duplicates": 0,
        "rejected": 0,
        "skipped": 0,
    }
    out = _cli(args, env)
    assert json.loads(out.stdout.strip().splitlines()[-1])["duplicates"] == 4
    events = httpx.get(f"{live_server.url}/v1/events", headers={"Authorization": "Bearer test-token"}).json()["events"]
    assert len(events) == 4 and {e["host"] for e in events} == {socket.gethostname()}
    assert {(e["attributes"]["attempt"], e["rank"]) for e in events} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    out = _cli(["--torchelastic", str(bad), "--url", live_server.url, "--token", "test-token", "--host", "h"], env)
    assert out.returncode == 2 and "not a torchelastic error file" in out.stderr


def _torch_python() -> str | None:
    candidates = [
        os.environ.get("INCIDENTBOT_TEST_TORCH_PYTHON"),
        sys.executable,
        "/work/torchvenv/bin/python",
        shutil.which("python3"),
    ]
    for c in candidates:
        if c and Path(c).exists():
            ok = subprocess.run([c, "-c", "import torch.distributed.run"], capture_output=True, timeout=120)
            if ok.returncode == 0:
                return c
    return None


def test_a_real_torchrun_run_end_to_end(tmp_path, live_server):
    python = _torch_python()
    if python is None:
        pytest.skip("no interpreter here can import torch (set INCIDENTBOT_TEST_TORCH_PYTHON to one that can)")
    logdir = tmp_path / "logs"
    cmd = [
        python,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{free_port()}",
        "--rdzv-id=e2e7",
        "--log-dir",
        str(logdir),
        "--tee",
        "3",
        str(DATA / "fail_rank1.py"),
    ]
    with open(tmp_path / "stdout.log", "w") as out, open(tmp_path / "stderr.log", "w") as err:
        rc = subprocess.run(
            cmd, stdout=out, stderr=err, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
        ).returncode
    assert rc != 0
    env = {"PATH": "/usr/bin:/bin", "INCIDENTBOT_URL": f"http://127.0.0.1:{free_port()}"}
    common = ["--url", live_server.url, "--token", "test-token"]
    out = _cli([str(tmp_path / "*.log"), *common], env)
    assert out.returncode == 0, out.stderr
    out = _cli(["--torchelastic", str(logdir), "--host", "node-e2e", *common], env)
    assert out.returncode == 0, out.stderr
    events = httpx.get(
        f"{live_server.url}/v1/events", params={"limit": 500}, headers={"Authorization": "Bearer test-token"}
    ).json()["events"]
    files = [e for e in events if e["attributes"].get("source") == "torchelastic"]
    assert {(e["job_id"], e["rank"], e["attributes"]["attempt"]) for e in files} == {("e2e7", 0, 0), ("e2e7", 1, 0)}
    logs = [e for e in events if e["attributes"].get("source") == "logfile"]
    rank1 = [e for e in logs if e.get("rank") == 1 and e["message"].startswith("Traceback")]
    assert len(rank1) == 1 and "direct cause" in rank1[0]["message"] and "KeyError: 'shard-1'" in rank1[0]["message"]
    assert any("Root Cause (first observed failure)" in e["message"] for e in logs)
