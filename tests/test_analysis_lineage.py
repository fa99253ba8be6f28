"""Run lineage (job-id patterns, reporter run/attempt) and recurrence at a step across attempts."""

from dataclasses import replace

import pytest

from incidentbot.analysis import analyze
from incidentbot.analysis.lineage import attempt_number, launcher_job_name, run_key, sequential_runs
from incidentbot.analysis.synth import PROGRESS, Fleet

ZLIB = 20

RUNS = [
    ("llama-7b-r3", None, "llama-7b"),
    ("train_attempt3", None, "train"),
    ("job-12.2", None, "job-12"),
    ("exp-retry-1", None, "exp"),
    ("448376", "c1-run000", "c1-run000"),  # SLURM requeue: a new id, the reporter names the run
    ("job-0007", None, "job-0007"),  # a number is no restart suffix
    ("r2", None, "r2"),  # nothing left without the suffix: the id itself
]


@pytest.mark.parametrize("job,run,want", RUNS)
def test_run_key(job, run, want):
    assert run_key(job, run) == want


def test_attempt_number():
    assert attempt_number("llama-r3") == 3 and attempt_number("x", 4) == 4 and attempt_number("job-0007") is None


def restarted_run(n_attempts, *, same_step=True, new_ids=True, same_host=False, sig=None, collective=False):
    """A run failing at step 6,123 on each attempt; each attempt a new SLURM job id (the reporter
    names the run), read by a different rank (on another host, unless ``same_host``) each time."""
    f = Fleet()
    f.sig(ZLIB, *(sig or ("zlib error reading shard", "dataloader", "data")))
    for k in range(n_attempts):
        jid = f"4483{k:02d}" if new_ids else "run-a"
        if jid not in f.jobs:
            f.job(jid, ["h00", "h01", "h02", "h03"], 7_000, start=30_000 * k, every=250)
        step = 6_123 if same_step else 6_123 + 400 * k
        host = "h01" if same_host else f"h0{k % 4}"
        if collective:  # every host of the job at once, as NCCL failing to connect is
            for h in ("h00", "h02", "h03"):
                f.event(ZLIB, jid, step, h, rank=int(h[-1]) * 8, at=f.jobs[jid].start + 20_000)
        e = f.event(ZLIB, jid, step, host, rank=3 + 8 * k, at=f.jobs[jid].start + 20_000)
        f.events[e.id - 1] = replace(e, run="c1-run000", attempt=k)
    f.events = [replace(e, run="c1-run000") for e in f.events]
    return f


def test_same_step_across_attempts_with_new_job_ids_and_moving_ranks_is_data():
    f = restarted_run(3)
    props = analyze(f.events, f.signatures)
    data = [p for p in props if p.kind == "data_step"]
    assert len(data) == 1
    p = data[0]
    assert p.cause_class == "data" and p.scope["steps"] == ["6123"]
    assert set(p.event_ids) == f.ids(ZLIB)
    assert any("run c1-run000 stopped at step 6,123 in 3 separate attempts" in line for line in p.evidence)
    # the title names the run, as people call it, not its attempts' job ids
    assert p.title == "Bad training data at step 6123 of run c1-run000: fails there after every restart"
    assert p.scope["runs"] == ["c1-run000"] and p.scope["jobs"] == ["448300", "448301", "448302"]


def test_two_attempts_failing_at_the_step_on_different_hosts_are_data():
    """The bad record moved with the sampler: two attempts are enough."""
    f = restarted_run(2)
    (p,) = [p for p in analyze(f.events, f.signatures) if p.kind == "data_step"]
    assert set(p.event_ids) == f.ids(ZLIB) and p.scope["steps"] == ["6123"]
    assert any("in 2 separate attempts" in line for line in p.evidence)


NOT_DATA = [  # (name, attempts, kwargs)
    ("two attempts on one host: a bad GPU failing again right after the restart", 2, {"same_host": True}),
    ("two attempts on different hosts, a hardware line", 2, {"sig": ("Xid 79: GPU has fallen off the bus", "xid", "hardware")}),
    ("three attempts at different steps", 3, {"same_step": False}),
    (
        "two attempts, each on many hosts at once: a collective's line at the step it resumed from",
        2,
        {"collective": True, "sig": ("NCCL WARN: Call to ibv_modify_qp failed", "nccl", "unknown")},
    ),
]


@pytest.mark.parametrize("name,n,kwargs", NOT_DATA, ids=[c[0] for c in NOT_DATA])
def test_attempts_that_do_not_make_a_bad_record(name, n, kwargs):
    f = restarted_run(n, **kwargs)
    assert not [p for p in analyze(f.events, f.signatures) if p.kind == "data_step"], name


def test_three_attempts_on_one_host_are_still_data():
    f = restarted_run(3, same_host=True)
    assert [p for p in analyze(f.events, f.signatures) if p.kind == "data_step"]


def restarted_run_two_bad_steps(*, runs: tuple[str, str]):
    """Bad data read at step 6,123 on three attempts and at step 9,001 on three more; the two
    steps in one run (``runs`` equal) or in two runs."""
    f = Fleet()
    f.sig(ZLIB, "zlib error reading shard", "dataloader", "data")
    for k in range(6):
        jid = f"4484{k:02d}"
        step = 6_123 if k < 3 else 9_001
        # each attempt runs up to the bad step and stops there
        f.job(jid, ["h00", "h01", "h02", "h03"], step, start=30_000 * k, every=250)
        f.event(ZLIB, jid, step, f"h0{k % 4}", rank=3 + 8 * k, at=f.jobs[jid].start + 2 * step + 5)
    run_of = {f"4484{k:02d}": runs[0] if k < 3 else runs[1] for k in range(6)}
    f.events = [replace(e, run=run_of[e.job_id]) for e in f.events]
    return f


def test_two_bad_steps_of_one_run_are_one_hypothesis():
    f = restarted_run_two_bad_steps(runs=("c1-run000", "c1-run000"))
    (p,) = [p for p in analyze(f.events, f.signatures) if p.kind == "data_step"]
    assert set(p.event_ids) == f.ids(ZLIB) and p.scope["steps"] == ["6123", "9001"]
    assert p.title == "Bad training data at steps 6123 and 9001 of run c1-run000: fails there after every restart"


def test_bad_steps_of_two_runs_are_two_hypotheses():
    f = restarted_run_two_bad_steps(runs=("c1-run000", "c1-run001"))
    data = [p for p in analyze(f.events, f.signatures) if p.kind == "data_step"]
    assert sorted(p.scope["runs"] for p in data) == [["c1-run000"], ["c1-run001"]]
    assert sorted(p.scope["steps"] for p in data) == [["6123"], ["9001"]]


SEQ = [  # (name, spans, expected job -> run)
    (
        "pods named by a random tail, one after another: one run",
        {"moe-pt73-82637b": (0, 100), "moe-pt73-36fb35": (120, 300), "moe-pt73-675049": (290, 500)},
        {"moe-pt73-82637b": "moe-pt73", "moe-pt73-36fb35": "moe-pt73", "moe-pt73-675049": "moe-pt73"},
    ),
    (
        "the same name running at the same time: parallel jobs",
        {"sweep-a1b2c3": (0, 1000), "sweep-d4e5f6": (10, 990)},
        {},
    ),
    ("no random tail (run005, a word)", {"c2-run005": (0, 10), "c2-run006": (20, 30), "exp-llama": (40, 50)}, {}),
    ("one job alone", {"moe-pt73-82637b": (0, 100)}, {}),
]


@pytest.mark.parametrize("name,spans,want", SEQ, ids=[s[0] for s in SEQ])
def test_sequential_runs(name, spans, want):
    assert sequential_runs(spans) == want


NAMED = [  # (name, spans, job names, expected job -> run)
    (
        "SLURM resubmissions: new numeric ids, one job name, one after another",
        {"8126167": (0, 100), "8136476": (150, 300), "8139773": (320, 500)},
        {"8126167": "moe-sft50", "8136476": "moe-sft50", "8139773": "moe-sft50"},
        {"8126167": "moe-sft50", "8136476": "moe-sft50", "8139773": "moe-sft50"},
    ),
    (
        "one name, two jobs at the same time: parallel jobs (a sweep), not attempts",
        {"8126167": (0, 1000), "8126168": (5, 990)},
        {"8126167": "sweep", "8126168": "sweep"},
        {},
    ),
    (
        "different names: different runs",
        {"8126167": (0, 100), "8136476": (150, 300)},
        {"8126167": "llama-pt", "8136476": "moe-sft"},
        {},
    ),
    (
        "the name wins over a random tail",
        {"pt73-82637b": (0, 100), "pt73-36fb35": (120, 300)},
        {"pt73-82637b": "llama", "pt73-36fb35": "llama"},
        {"pt73-82637b": "llama", "pt73-36fb35": "llama"},
    ),
]


@pytest.mark.parametrize("name,spans,names,want", NAMED, ids=[s[0] for s in NAMED])
def test_sequential_runs_by_the_launchers_job_name(name, spans, names, want):
    assert sequential_runs(spans, names=names) == want


JOB_NAMES = [
    ({"job_name": "moe-sft50"}, "moe-sft50"),
    ({"slurm_job_name": "llama-pt"}, "llama-pt"),
    ({"job_name": "  padded  "}, "padded"),
    ({"job_name": "x" * 300}, "x" * 256),
    # known wrong: not a name, so no lineage is guessed from it
    ({"job_name": ""}, None),
    ({"job_name": "   "}, None),
    ({"job_name": 7}, None),
    ({"job_name": ["a"]}, None),
    ({}, None),
    (None, None),
    ("job_name=x", None),
]


@pytest.mark.parametrize("attributes,want", JOB_NAMES)
def test_launcher_job_name(attributes, want):
    assert launcher_job_name(attributes) == want


def resubmitted_run(*, names: tuple[str, str, str], overlap: bool = False):
    """A run resubmitted twice under new numeric SLURM ids, failing at step 6,123 each time; the
    reporter says only the job name (``names``), not the run."""
    f = Fleet()
    f.sig(ZLIB, "zlib error reading shard", "dataloader", "data")
    for k, name in enumerate(names):
        jid = f"81{k}6167"
        f.job(jid, ["h00", "h01", "h02", "h03"], 6_123, start=(1_000 if overlap else 30_000) * k, every=250)
        f.event(ZLIB, jid, 6_123, f"h0{k % 4}", rank=3 + 8 * k, at=f.jobs[jid].start + 2 * 6_123 + 5)
    f.events = [replace(e, job_name=names[int(e.job_id[2])]) for e in f.events]
    return f


def test_resubmissions_sharing_a_job_name_are_one_run():
    f = resubmitted_run(names=("moe-sft50",) * 3)
    (p,) = [p for p in analyze(f.events, f.signatures) if p.kind == "data_step"]
    assert set(p.event_ids) == f.ids(ZLIB) and p.scope["runs"] == ["moe-sft50"]
    assert p.scope["jobs"] == ["8106167", "8116167", "8126167"]


@pytest.mark.parametrize(
    "names,overlap",
    [(("moe-sft50", "llama-pt", "vlm-ft"), False), (("sweep",) * 3, True)],
    ids=["different names", "one name, running at the same time"],
)
def test_jobs_of_other_names_or_running_at_once_are_not_one_run(names, overlap):
    f = resubmitted_run(names=names, overlap=overlap)
    assert not [p for p in analyze(f.events, f.signatures) if p.kind == "data_step"]


def test_one_job_id_failing_again_at_the_step_it_came_back_to_is_data():
    """Restarts under one job id: after each failure the next line the run logs is the same
    failure at the same step (it reloaded a checkpoint and came back); after the third the sampler
    skips the shard and the run goes on. Counted as three attempts, the run's later progress
    notwithstanding."""
    f = Fleet()
    f.sig(ZLIB, "zlib error reading shard", "dataloader", "data")
    f.job("run-a", ["h00", "h01", "h02", "h03"], 1)
    t = f.jobs["run-a"].start
    for k, step in enumerate((5_900, 6_000, 6_100)):
        f.event(PROGRESS, "run-a", step, "h00", rank=0, at=t + 10 * k)
    for k in range(3):  # attempt k fails at 6,123, 20 minutes apart, nothing logged between
        f.event(ZLIB, "run-a", 6_123, f"h0{k}", rank=3 + 8 * k, at=t + 600 + 1_200 * k)
    for k in range(8):  # then past it
        f.event(PROGRESS, "run-a", 6_200 + 100 * k, "h00", rank=0, at=t + 3_100 + 60 * k)
    (p,) = [p for p in analyze(f.events, f.signatures) if p.kind == "data_step"]
    assert set(p.event_ids) == f.ids(ZLIB) and p.scope["steps"] == ["6123"]


def test_an_info_line_every_attempt_logs_at_its_resume_step_is_no_bad_data():
    """Known wrong before: NCCL's INFO lines at the step each attempt resumes from (its
    checkpoint), three attempts in a row, each attempt then failing at the same step again."""
    f = Fleet()
    info = f.sig(21, "<*> NCCL INFO Bootstrap : Using <*>", "other", "unknown")
    f.job("run-b", ["h00", "h01", "h02", "h03"], 1)
    t = f.jobs["run-b"].start
    for k in range(3):
        f.event(info, "run-b", 6_000, f"h0{k}", rank=8 * k, at=t + 1_200 * k)
        f.event(info, "run-b", 6_000, f"h0{k + 1}", rank=8 * k + 1, at=t + 1_200 * k + 90)
    assert not [p for p in analyze(f.events, f.signatures) if p.kind == "data_step"]
