"""Onsets: several rare symptoms pooled into one bug, version pairs, and versions that stand for a cluster."""

import random
from dataclasses import replace

import pytest

from incidentbot.analysis import analyze
from incidentbot.analysis.synth import Fleet

NAN, ASSERT, IMA, OTHER = 60, 61, 62, 63


def hosts(n, prefix):
    return [f"{prefix}{i:02d}" for i in range(n)]


def fleet(job_versions, *, per_symptom=3, bad=lambda v: v["torch"] == "2.3.0", seed=2, clusters=None):
    f = Fleet()
    f.sig(NAN, "NaN loss", "loss_instability", "software")
    f.sig(ASSERT, "device-side assert", "cuda_runtime", "software")
    f.sig(IMA, "CUDA illegal memory access", "cuda_runtime", "software")
    for k, v in enumerate(job_versions):
        f.job(f"j{k}", hosts(4, f"n{k}-"), 12_000, versions=v, start=k * 11)
    rng = random.Random(seed)
    bad_jobs = [f"j{k}" for k, v in enumerate(job_versions) if bad(v)]
    for sig in (NAN, ASSERT, IMA):
        for _ in range(per_symptom):
            j = rng.choice(bad_jobs)
            f.event(sig, j, rng.randrange(12_000), rng.choice(f.jobs[j].hosts), rank=rng.randrange(32))
    if clusters:
        f.events = [replace(e, cluster=clusters[e.job_id]) for e in f.events]
    return f


def regressions(f):
    return [p for p in analyze(f.events, f.signatures) if p.kind == "regression"]


OLD, NEW = {"torch": "2.2.2", "cuda": "12.4"}, {"torch": "2.3.0", "cuda": "12.4"}


def test_three_rare_symptoms_pool_into_one_bug():
    f = fleet([OLD] * 4 + [NEW] * 4)
    (p,) = regressions(f)
    assert set(p.signature_ids) == {NAN, ASSERT, IMA}
    assert "torch=2.3.0" in p.scope["versions"]
    assert any("3 symptoms too rare for an onset each" in line for line in p.evidence)


def test_rare_symptoms_on_both_versions_are_no_onset():
    f = fleet([OLD] * 4 + [NEW] * 4, bad=lambda v: True)
    assert regressions(f) == []


def test_a_torch_cuda_pair():
    """Active only under torch 2.3.0 with cuda 12.6: neither torch 2.3.0 (clean on 12.4) nor cuda
    12.6 (clean under torch 2.2.2) alone is the onset."""
    vs = [{"torch": t, "cuda": c} for t in ("2.2.2", "2.3.0") for c in ("12.4", "12.6")] * 2
    f = fleet(vs, per_symptom=4, bad=lambda v: v["torch"] == "2.3.0" and v["cuda"] == "12.6")
    (p,) = regressions(f)
    assert set(p.signature_ids) == {NAN, ASSERT, IMA}
    assert {"torch=2.3.0", "cuda=12.6"} <= set(p.scope["versions"])
    assert "cuda 12.6" in p.title and "torch 2.3.0" in p.title


@pytest.mark.parametrize("per_symptom", [3, 8])
def test_a_driver_that_stands_for_a_cluster_is_no_regression(per_symptom):
    """Driver 550 runs only on cluster c2 (and c2 runs nothing else): the symptoms there do not
    make "regression since driver 550"."""
    vs = [{"driver": "535", "torch": "2.3.0"}] * 4 + [{"driver": "550", "torch": "2.3.0"}] * 4
    clusters = {f"j{k}": "c1" if k < 4 else "c2" for k in range(8)}
    f = fleet(vs, per_symptom=per_symptom, bad=lambda v: v["driver"] == "550", clusters=clusters)
    assert not [p for p in regressions(f) if any(v.startswith("driver=") for v in p.scope["versions"])]


SCHED = 64


@pytest.mark.parametrize(
    "title, category, joins",
    [
        ("RuntimeError: CUDA error: unspecified launch failure", "cuda_runtime", True),  # a symptom: pools
        # known wrong: the scheduler's line on how a job ended is no symptom of the code's bug,
        # though it shows in the same (bad) jobs, since they are the ones that crashed
        ("SLURM: job ended by signal SIGKILL", "slurm", False),
        ("Kubernetes pod terminated: OOMKilled", "kubernetes", False),
    ],
)
def test_a_scheduler_line_in_the_bad_jobs_takes_no_part_in_a_pooled_onset(title, category, joins):
    f = fleet([OLD] * 4 + [NEW] * 4)
    f.sig(SCHED, title, category, "unknown")
    rng = random.Random(5)
    for k in (4, 5, 6):  # the NEW jobs
        j = f"j{k}"
        f.event(SCHED, j, rng.randrange(12_000), f.jobs[j].hosts[0], rank=0)
    (p,) = regressions(f)
    assert {NAN, ASSERT, IMA} <= set(p.signature_ids)
    assert (SCHED in p.signature_ids) == joins


CHILD, WORKER = 65, 66


@pytest.mark.parametrize(
    "after_another_text, joins",
    [
        (False, True),  # a line that opens its own failure inside the versions: one more symptom
        # known wrong: the launcher's line right after another failure's (a data loader's crash,
        # which comes on every version) is that failure's, even when the ones it followed happened
        # to come in the bug's versions
        (True, False),
    ],
)
def test_a_line_that_follows_other_failures_takes_no_part_in_a_pooled_onset(after_another_text, joins):
    f = fleet([OLD] * 4 + [NEW] * 4)
    f.sig(CHILD, "torchrun child process failed (exitcode 1)", "elastic", "unknown")
    f.sig(WORKER, "RuntimeError: DataLoader worker exited unexpectedly", "dataloader", "unknown")
    for k, step in ((0, 3_000), (1, 4_000), (2, 6_000)):  # the OLD jobs: the loader crashes there too
        f.event(WORKER, f"j{k}", step, f.jobs[f"j{k}"].hosts[1], rank=8)
    for k, step in ((4, 2_000), (5, 5_000), (6, 7_000)):  # the NEW jobs
        j = f"j{k}"
        h = f.jobs[j].hosts[k % 4]
        if after_another_text:
            f.event(WORKER, j, step, h, rank=0)
        f.event(CHILD, j, step, h, rank=0, dt=3.0)
    (p,) = regressions(f)
    assert {NAN, ASSERT, IMA} <= set(p.signature_ids)
    assert (CHILD in p.signature_ids) == joins


NCCLX = 67


@pytest.mark.parametrize(
    "second_cause, joins",
    [
        (False, True),  # spread over the new torch like the bug's other symptoms: one more symptom
        # known wrong: a text whose every line is on nccl 2.21.5, which rolled out with part of torch
        # 2.3.0, while the bug's lines are on both NCCLs, is a second cause, not one more symptom
        (True, False),
    ],
)
def test_a_text_all_on_a_part_of_the_onset_the_others_avoid_is_a_second_cause(second_cause, joins):
    old = {"torch": "2.2.2", "nccl": "2.18.3"}
    new_a = {"torch": "2.3.0", "nccl": "2.18.3"}
    new_b = {"torch": "2.3.0", "nccl": "2.21.5"}
    f = fleet([old] * 4 + [new_a] * 5 + [new_b] * 3, per_symptom=0)
    for n, sig in enumerate((NAN, ASSERT, IMA)):  # the bug: on both NCCLs of the new torch
        for k in range(4, 12):
            f.event(sig, f"j{k}", 500 + 3_000 * n + 100 * k, f.jobs[f"j{k}"].hosts[n], rank=8 * n)
    # seven lines: too few for an onset of their own (nccl 2.21.5 ran a quarter of the steps)
    f.sig(NCCLX, "NCCL WARN: Cuda failure 'invalid argument'", "nccl", "unknown")
    jobs = [9, 10, 11, 9, 10, 11, 9] if second_cause else [4, 5, 6, 7, 8, 9, 10]
    for n, k in enumerate(jobs):
        f.event(NCCLX, f"j{k}", 1_000 + 1_300 * n, f.jobs[f"j{k}"].hosts[3], rank=24)
    bug = [p for p in regressions(f) if NAN in p.signature_ids]
    assert len(bug) == 1 and {NAN, ASSERT, IMA} <= set(bug[0].signature_ids)
    assert (NCCLX in bug[0].signature_ids) == joins


SPIKE = 68


@pytest.mark.parametrize(
    "on_new_torch_only, joins_pool",
    [
        (False, True),  # spread over cuda 12.6 like the pool's other symptoms: one more of them
        # known wrong: every line inside torch 2.6.0, whose own regression (a frequent text) was
        # found already, is no evidence for a second bug on cuda 12.6: it is that regression's
        (True, False),
    ],
)
def test_a_rare_text_inside_a_regression_already_found_is_that_regressions(on_new_torch_only, joins_pool):
    old = {"torch": "2.5.1", "cuda": "12.4"}
    mid = {"torch": "2.5.1", "cuda": "12.6"}
    new = {"torch": "2.6.0", "cuda": "12.6"}
    f = fleet([old] * 16 + [mid] * 4 + [new] * 3, per_symptom=0)
    # a bug on cuda 12.6 under either torch, each text too rare for an onset of its own
    for sig, jobs in ((NAN, (16, 17, 18, 19)), (ASSERT, (16, 17, 19, 20))):
        for n, k in enumerate(jobs):
            f.event(sig, f"j{k}", 400 + 2_700 * n + 1_300 * (sig - NAN), f.jobs[f"j{k}"].hosts[n], rank=8 * n)
    f.sig(SPIKE, "Loss spike", "loss_instability", "software")
    for n in range(20):  # torch 2.6.0's own regression: a frequent text
        j = f"j{20 + n % 3}"
        f.event(SPIKE, j, 300 + 550 * n, f.jobs[j].hosts[n % 4], rank=n)
    for n, j in enumerate(["j20", "j21", "j22"] if on_new_torch_only else ["j16", "j18", "j21"]):
        f.event(IMA, j, 700 + 3_100 * n, f.jobs[j].hosts[1], rank=9)
    regs = regressions(f)
    (pool,) = [p for p in regs if NAN in p.signature_ids]
    (spike,) = [p for p in regs if SPIKE in p.signature_ids]
    assert pool is not spike and ASSERT in pool.signature_ids and "since cuda 12.6" in pool.title
    assert "since torch 2.6.0" in spike.title
    assert (IMA in pool.signature_ids) == joins_pool
    assert (IMA in spike.signature_ids) == (not joins_pool)
