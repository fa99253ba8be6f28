"""The plain-log parser (pure): each format's prefixes, which records are failures, multi-line assembly, bounds."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from incidentbot.ingest.logfiles import LogParser, classify, looks_like_jsonl, parse_text, to_event

DATA = Path(__file__).parent / "data"
UTC = timezone.utc

# (line, kind or None, fields the prefix gives). One line each, in every format the command reads.
LINES = [
    (
        "gpu-node07:4124:4199 [3] NCCL WARN NET/IB : Got async event : port error",
        "nccl",
        {"host": "gpu-node07", "pid": 4124, "gpu": "3", "format": "nccl", "rank": None},
    ),
    ("gpu-node07:4121:4121 [0] NCCL INFO cudaDriverVersion 12040", None, {"gpu": "0", "format": "nccl"}),
    (
        "[rank3]:[E1206 18:44:12.715298746 ProcessGroupNCCL.cpp:616] [Rank 3] Watchdog caught collective operation timeout: "
        "WorkNCCL(SeqNum=7753, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600061 milliseconds before timing out.",
        "hang",
        {"rank": 3, "time": datetime(2025, 12, 6, 18, 44, 12, 715298, tzinfo=UTC), "level": "error"},
    ),
    # c10 writes the month without padding: E626 is June 26.
    (
        "[rank5]:[E626 06:24:44.903881913 ProcessGroupNCCL.cpp:616] [Rank 5] Watchdog caught collective operation timeout: x",
        "hang",
        {"rank": 5, "time": datetime(2025, 6, 26, 6, 24, 44, 903881, tzinfo=UTC)},
    ),
    ("[default1]:[rank1]: RuntimeError: boom", "error", {"rank": 1, "local_rank": 1}),
    (
        "W1201 23:46:59.351000 16531 torch/distributed/elastic/multiprocessing/api.py:1028] Sending process 16535 closing signal SIGTERM",
        "warning",
        {"pid": 16531, "time": datetime(2025, 12, 1, 23, 46, 59, 351000, tzinfo=UTC), "format": "glog"},
    ),
    (
        "E1201 23:46:59.551000 16531 torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: 1) local_rank: 1 (pid: 16536) of binary: /usr/bin/python3",
        "crash",
        {"pid": 16531},
    ),
    (
        "[2025-01-20 10:00:00,123] torch.distributed.elastic.agent.server.api: [WARNING] Received Signals.SIGTERM death signal, shutting down workers",
        "warning",
        {"time": datetime(2025, 1, 20, 10, 0, 0, 123000, tzinfo=UTC), "format": "pylog"},
    ),
    ("2025-01-20 10:00:00,500 INFO trainer: step 100 loss 2.3", None, {"format": "pylog", "level": "info"}),
    (
        "Jan 20 10:02:13 gpu-node07 kernel: [ 8812.402117] NVRM: Xid (PCI:0000:91:00): 79, pid=1896, name=python, GPU has fallen off the bus.",
        "hardware",
        {"host": "gpu-node07", "time": datetime(2025, 1, 20, 10, 2, 13, tzinfo=UTC), "format": "dmesg"},
    ),
    (
        "2025-01-20T10:02:20+0000 gpu-node08 systemd[1]: nvidia-dcgm.service: Main process exited, code=exited, status=1/FAILURE",
        "error",
        {"host": "gpu-node08", "pid": 1, "time": datetime(2025, 1, 20, 10, 2, 20, tzinfo=UTC), "format": "syslog"},
    ),
    (
        "[ 8812.402117] NVRM: Xid (PCI:0000:91:00): 79, pid=1896, name=python, GPU has fallen off the bus.",
        "hardware",
        {"format": "dmesg", "time": None},
    ),
    ("NVRM: Xid (PCI:0000:3b:00): 13, pid=2201, name=python, Graphics SM Warp Exception", "hardware", {}),
    (
        "[Mon Jan 20 10:04:12 2025] NVRM: Xid (PCI:0000:b5:00): 31, pid=4121, name=python, MMU Fault",
        "hardware",
        {"time": datetime(2025, 1, 20, 10, 4, 12, tzinfo=UTC)},
    ),
    (
        "srun: error: gpu-node11: task 3: Exited with exit code 1",
        "crash",
        {"host": "gpu-node11", "rank": 3, "format": "slurm"},
    ),
    (
        "slurmstepd: error: *** JOB 884211 ON gpu-node11 CANCELLED AT 2025-01-20T11:00:05 DUE TO TIME LIMIT ***",
        "slurm",
        {"job_id": "884211", "host": "gpu-node11", "time": datetime(2025, 1, 20, 11, 0, 5, tzinfo=UTC)},
    ),
    (
        "slurmstepd: error: Detected 1 oom_kill event in StepId=884211.0. Some of the step tasks have been OOM Killed.",
        "oom",
        {"job_id": "884211"},
    ),
    ("  3: RuntimeError: CUDA error: an illegal memory access was encountered", "error", {"rank": 3}),
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.", "oom", {}),
    ("step 1200 loss nan", "nan", {}),
    ("Segmentation fault (core dumped)", "crash", {}),
]

# Known wrong: text that looks like a failure to a naive matcher and is not one.
NOT_FAILURES = [
    "device 0000:91:00.0 - no errors found",
    "epoch 3 done: 0 errors, 12000 samples",
    "validation error_count=0 loss 1.92",
    "gpu-node07:4121:4121 [0] NCCL INFO NET/IB : error handling enabled",  # INFO level: words do not count
    "I1201 23:46:59.000000 16531 torch/distributed/run.py:1] restart on failure is enabled",
    "W1201 23:46:57.362000 16531 torch/distributed/run.py:874] *****************************************",
    "W1201 23:46:57.362000 16531 torch/distributed/run.py:874] Setting OMP_NUM_THREADS environment variable for each process to be 1 in default",
    "2025-01-20T10:02:21+0000 gpu-node08 systemd[1]: Starting Daily apt download activities...",
]


@pytest.mark.parametrize("line,kind,fields", LINES, ids=[line[:40] for line, _, _ in LINES])
def test_each_format_gives_the_right_record(line, kind, fields):
    [record] = parse_text(line + "\n", year=2025)
    assert record.kind == kind, record.why
    for name, value in fields.items():
        assert getattr(record, name) == value, name


@pytest.mark.parametrize("line", NOT_FAILURES)
def test_known_non_failures_are_skipped(line):
    [record] = parse_text(line + "\n", year=2025)
    assert record.kind is None, record.why


def test_classify_says_why():
    assert classify("NVRM: Xid (PCI:0000:91:00): 79") == ("hardware", "matches the hardware rule")
    assert classify("all good", level="info") == (None, "logged at info level")


def test_interleaved_rank_tracebacks_with_a_chained_cause_are_one_record_each():
    # torchrun --tee output of two ranks failing at once (real run, tests/data/torchrun/stdout+stderr).
    records = [r for r in parse_text((DATA / "torchrun" / "stderr.txt").read_text(), year=2026) if r.kind == "crash"]
    tracebacks = [r for r in records if r.text.startswith("Traceback") and r.rank is not None]
    assert [r.rank for r in tracebacks] == [1, 0, 1, 0]  # two attempts (--max-restarts=1)
    first = tracebacks[0]
    assert first.local_rank == 1
    assert "KeyError: 'shard-1'" in first.text and "The above exception was the direct cause" in first.text
    assert first.text.rstrip().endswith("RuntimeError: rank 1: CUDA error: an illegal memory access was encountered")
    assert "[rank1]" not in first.text and "[default1]" not in first.text  # the prefixes are peeled
    assert "Connection closed by peer" in tracebacks[1].text and "KeyError" not in tracebacks[1].text


def test_the_torchrun_failure_summary_box_is_one_record_with_its_traceback():
    records = parse_text((DATA / "torchrun" / "stderr.txt").read_text(), year=2026)
    [box] = [r for r in records if "ChildFailedError" in r.text]
    assert box.text.startswith("Traceback (most recent call last):")
    assert "Root Cause (first observed failure):" in box.text and "rank      : 1 (local_rank: 1)" in box.text
    assert box.text.rstrip().endswith("=" * 60) and box.end == len((DATA / "torchrun" / "stderr.txt").read_bytes())


def test_during_handling_chain_and_cpp_terminate_with_frames():
    text = (
        "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n    x()\nKeyError: 'k'\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        'Traceback (most recent call last):\n  File "a.py", line 3, in <module>\n    f()\nValueError: v\n'
        "next line\n"
    )
    records = parse_text(text)
    assert [r.kind for r in records] == ["crash", None]
    assert "KeyError" in records[0].text and records[0].text.endswith("ValueError: v")
    records = parse_text((DATA / "logs" / "watchdog.log").read_text(), year=2025)
    [cpp] = [r for r in records if r.text.startswith("terminate called")]
    assert (
        cpp.kind == "crash"
        and "what():" in cpp.text
        and "frame #2:" in cpp.text
        and "Exception raised from" in cpp.text
    )


def test_cuda_error_continuation_lines_stay_with_their_traceback_under_srun_labels():
    records = parse_text((DATA / "logs" / "slurm-884211.out").read_text())
    [tb] = [r for r in records if r.text.startswith("Traceback")]
    assert tb.rank == 3 and tb.text.endswith("so the stacktrace below might be incorrect.")
    assert [r.kind for r in records] == [None, None, None, "crash", None, "crash", "oom", "slurm"]


def test_a_runaway_traceback_is_cut_and_says_so():
    frames = "".join(f'  File "f.py", line {i}, in g\n    g()\n' for i in range(5000))
    [record] = parse_text(
        "Traceback (most recent call last):\n" + frames + "RecursionError: maximum recursion depth exceeded\n",
        max_lines=100,
    )
    assert record.kind == "crash" and record.cut_lines > 0
    assert "lines cut" in record.text and record.text.endswith("RecursionError: maximum recursion depth exceeded")
    assert len(record.text.splitlines()) <= 101
    # One line that never ends is cut too.
    [long] = parse_text("ERROR " + "x" * 100_000 + "\n")
    assert len(long.text) < 10_000 and "line cut" in long.text


def test_a_ruler_that_is_not_torchruns_box_does_not_swallow_lines():
    records = parse_text("=" * 40 + "\nEpoch 1\nERROR: disk full\n")
    assert [r.kind for r in records] == [None, None, "error"]


def test_journal_json_entries_assemble_by_pid_and_carry_time_host_priority():
    parser = LogParser()
    lines = (DATA / "logs" / "journal.json").read_text().splitlines()
    assert looks_like_jsonl(lines[0]) and not looks_like_jsonl("[rank0]: {}")
    records = []
    for i, line in enumerate(lines):
        records += parser.feed_journal(json.loads(line), offset=i)
    records += parser.flush()
    kinds = {r.text.splitlines()[0]: r.kind for r in records}
    assert kinds["NVRM: Xid (PCI:0000:c1:00): 94, pid=3301, name=python, Contained ECC error."] == "hardware"
    [tb] = [r for r in records if r.text.startswith("Traceback")]
    assert tb.pid == 7001 and tb.host == "gpu-node09" and "OutOfMemoryError" in tb.text
    assert tb.time == datetime(2025, 1, 20, 10, 2, 20, tzinfo=UTC)
    assert kinds["Started Train job 77."] is None


def test_event_ids_depend_on_identity_offset_and_text_and_flags_fill_only_gaps():
    text = "srun: error: gpu-node11: task 3: Exited with exit code 1\n"
    [r] = parse_text(text)
    a = to_event(r, identity="1:2", job_id="j", host="flag-host", rank=9)
    assert a["host"] == "gpu-node11" and a["rank"] == 3 and a["job_id"] == "j"  # the text wins
    assert a["event_id"] == to_event(r, identity="1:2", job_id="other")["event_id"]
    assert a["event_id"] != to_event(r, identity="1:3", job_id="j")["event_id"]
    [bare] = parse_text("RuntimeError: x\n")
    b = to_event(bare, identity="1:2", job_id="j", host="flag-host", rank=9)
    assert b["host"] == "flag-host" and b["rank"] == 9


def test_parsing_is_linear_on_hostile_lines():
    # Many colons and digits where the NCCL prefix is tried; many brackets; must not backtrack.
    hostile = ("a:" + "1" * 5000 + ":") * 20 + "\n" + "[" * 50000 + "\n" + "[rank1]:" * 5000 + "x\n"
    records = parse_text(hostile)
    assert len(records) == 3
