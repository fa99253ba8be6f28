"""Onset with a code/framework version, and silence when the old version ran too little."""

import random

from incidentbot.analysis import analyze
from incidentbot.analysis.engine import version_key
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
    assert analyze(f.events, f.signatures) == []


def test_present_on_both_versions_is_no_onset():
    f = build(old_steps=14_000)
    rng = random.Random(9)
    for _ in range(30):
        j = f"old{rng.randrange(3)}"
        r = rng.randrange(32)
        f.event(NAN, j, rng.randrange(14_000), f.jobs[j].hosts[r // 8], rank=r)
    assert analyze(f.events, f.signatures) == []


def test_version_order_is_natural():
    assert sorted(["v1.10", "v1.9", "v1.2"], key=version_key) == ["v1.2", "v1.9", "v1.10"]
    assert version_key("2.3.0") < version_key("2.3.1") < version_key("2.10.0")
