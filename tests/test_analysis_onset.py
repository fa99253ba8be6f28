"""Onset with a code/framework version, and silence when the old version ran too little."""

import random

from incidentbot.analysis import analyze
from incidentbot.analysis.versions import version_key
from incidentbot.analysis.synth import Fleet

NAN = 20


def hosts(n, prefix):
    return [f"{prefix}{i:02d}" for i in range(n)]


def build(old_steps, n_events=40, seed=1):
    f = Fleet()
    f.sig(NAN, "NaN loss", "loss_instability", "software")
    for k in range(3):
        f.job(f"old{k}", hosts(4, f"o{k}-"), old_steps, versions={"torch": "2.2.2"}, start=k * 10)
    for k in range(3):
        f.job(f"new{k}", hosts(4, f"n{k}-"), 14_000, versions={"torch": "2.3.0"}, start=k * 10 + 5)
    rng = random.Random(seed)
    for _ in range(n_events):
        j = f"new{rng.randrange(3)}"
        hi = rng.randrange(4)
        f.event(NAN, j, rng.randrange(14_000), f.jobs[j].hosts[hi], rank=hi * 8 + rng.randrange(8))
    return f


def rules_fired(props):
    """Proposals an evidence rule made (coverage adds "cause not yet known" ones for the rest)."""
    return [p for p in props if p.kind not in ("unexplained", "storm_unexplained", "shared_component")]


def test_onset_found_with_exposure_on_both_sides():
    f = build(old_steps=14_000)
    props = analyze(f.events, f.signatures)
    assert len(props) == 1
    p = props[0]
    assert p.kind == "regression"
    assert p.cause_class == "software"
    assert "torch=2.3.0" in p.scope["versions"]
    assert "since torch 2.3.0" in p.title
    assert set(p.event_ids) == f.ids(NAN)
    assert any(line.startswith("NaN loss: 0 occurrences in") and "torch 2.2.2" in line for line in p.evidence)


def test_too_little_exposure_on_the_old_version_stays_silent():
    f = build(old_steps=300)  # 900 steps on the old torch: 40 events in 42,000 steps predicts < 1 there
    assert rules_fired(analyze(f.events, f.signatures)) == []


def test_present_on_both_versions_is_no_onset():
    f = build(old_steps=14_000)
    rng = random.Random(9)
    for _ in range(30):
        j = f"old{rng.randrange(3)}"
        r = rng.randrange(32)
        f.event(NAN, j, rng.randrange(14_000), f.jobs[j].hosts[r // 8], rank=r)
    assert rules_fired(analyze(f.events, f.signatures)) == []


def test_version_order_is_natural():
    assert sorted(["v1.10", "v1.9", "v1.2"], key=version_key) == ["v1.2", "v1.9", "v1.10"]
    assert version_key("2.3.0") < version_key("2.3.1") < version_key("2.10.0")


def test_one_text_from_two_regressions_is_split_between_them():
    # "illegal memory access" comes from a torch bug AND an NCCL bug; other symptoms pin each onset
    f = Fleet()
    IMA, ASSERT, CUBLAS = 21, 22, 23
    f.sig(IMA, "CUDA illegal memory access", "cuda_runtime", "software")
    f.sig(ASSERT, "device-side assert", "cuda_runtime", "software")
    f.sig(CUBLAS, "cuBLAS execution failed", "cuda_runtime", "software")
    combos = [("2.2.2", "2.19.3"), ("2.3.0", "2.19.3"), ("2.2.2", "2.21.5")]
    for k, (tv, nv) in enumerate(combos * 2):
        f.job(f"j{k}", hosts(4, f"h{k}-"), 12_000, versions={"torch": tv, "nccl": nv}, start=k * 7)
    rng = random.Random(4)
    torch_jobs = [j for j, jb in f.jobs.items() if dict(jb.versions)["torch"] == "2.3.0"]
    nccl_jobs = [j for j, jb in f.jobs.items() if dict(jb.versions)["nccl"] == "2.21.5"]
    truth = {}
    for jobs, sigs, cause in ((torch_jobs, (IMA, ASSERT), "torch"), (nccl_jobs, (IMA, CUBLAS), "nccl")):
        for sig in sigs:
            for _ in range(20):
                j = rng.choice(jobs)
                r = rng.randrange(32)
                truth[f.event(sig, j, rng.randrange(12_000), f.jobs[j].hosts[r // 8], rank=r).id] = cause
    props = analyze(f.events, f.signatures)
    assert len(props) == 2
    for p in props:
        assert p.kind == "regression" and IMA in p.signature_ids
        causes = {truth[i] for i in p.event_ids}
        assert len(causes) == 1
    assert {tuple(sorted(p.signature_ids)) for p in props} == {(IMA, ASSERT), (IMA, CUBLAS)}
