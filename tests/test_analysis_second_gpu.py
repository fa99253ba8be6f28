"""A host with one bad GPU is where a second is looked for; a storm after a pinned host's line
goes to that host.

Three rules, each with a case where it must fire and one where it must stay silent:
- a text concentrated on another GPU of a host already pinned is tested against that host's GPUs
  only (corrected for them), and is a hypothesis of its own, not the first GPU's;
- a host-level text's lines on that second GPU go with it;
- a storm right after a line of a hypothesis pinned to a host goes to that hypothesis, though
  the text of that line shows up elsewhere too often to be a reliable precursor by itself.
"""

import random
from dataclasses import replace

from incidentbot.analysis import analyze
from incidentbot.analysis.synth import Fleet

XID, NAN, CHILD, IMA, WATCHDOG = 10, 11, 12, 13, 14
HOSTS = [f"h{i:02d}" for i in range(32)]


def fleet(*, first_gpu_bad: bool, child_lines: bool = True) -> Fleet:
    f = Fleet()
    f.sig(XID, "Xid 48: double-bit ECC error", "xid", "hardware")
    f.sig(NAN, "NaN in gradient norm", "nan_loss", "unknown")
    f.sig(CHILD, "torchrun child process failed (exitcode 1)", "torchelastic", "unknown")
    for k in range(4):  # four attempts of one run, each on the same 32 hosts
        f.job(f"run7-r{k + 1}", HOSTS, 10_000, start=k * 25_000.0)
    rng = random.Random(5)
    for k in range(4):
        j = f"run7-r{k + 1}"
        if first_gpu_bad:  # GPU5 of h03: its own hardware text, twice an attempt
            for s in (2_000 + 50 * k, 6_000 + 50 * k):
                f.event(XID, j, s, "h03", gpu="GPU5", rank=29)
                f.event(CHILD, j, s, "h03", gpu="GPU5", rank=29, dt=20)
        if k < 3:  # GPU2 of h03: a NaN once an attempt, then its rank's child process failing
            f.event(NAN, j, 4_000 + 100 * k, "h03", gpu="GPU2", rank=26)
            if child_lines:
                f.event(CHILD, j, 4_000 + 100 * k, "h03", gpu="GPU2", rank=26, dt=20)
        for _ in range(5):  # NaNs elsewhere, spread over the other hosts, their GPUs and ranks
            h = rng.randrange(4, 32)
            g = rng.randrange(8)
            f.event(NAN, j, rng.randrange(10_000), HOSTS[h], gpu=f"GPU{g}", rank=h * 8 + g)
    return f


def holder(props, ids):
    hs = [p for p in props if set(p.event_ids) & ids]
    assert len(hs) == 1, [(p.title, len(p.event_ids)) for p in hs]
    return hs[0]


def second_gpu_ids(f: Fleet) -> set[int]:
    return {e.id for e in f.events if e.host == "h03" and e.gpu == "GPU2" and e.signature_id in (NAN, CHILD)}


def test_second_bad_gpu_of_a_pinned_host_is_its_own_hypothesis():
    f = fleet(first_gpu_bad=True)
    props = analyze(f.events, f.signatures)
    second = holder(props, second_gpu_ids(f))
    assert set(second.event_ids) == second_gpu_ids(f)  # its NaNs and its rank's child failures, nothing else
    assert second.kind == "localised_hardware" and second.scope["gpus"] == ["h03/2"]
    first = holder(props, f.ids(XID))
    assert first is not second and first.scope["gpus"] == ["h03/5"]
    assert not set(first.event_ids) & second_gpu_ids(f)
    assert any("3 of 23 occurrences on GPU 2 of host h03" in line for line in second.evidence)


def test_without_a_pinned_host_three_nans_on_one_gpu_are_not_enough():
    # the same three NaNs on h03's GPU2, but nothing else pins h03: tested against all 256 GPUs,
    # three of 23 is not beyond chance (and no child-process lines pin h03 either)
    f = fleet(first_gpu_bad=False, child_lines=False)
    props = analyze(f.events, f.signatures)
    nan_ids = {e.id for e in f.events if e.signature_id == NAN and e.host == "h03" and e.gpu == "GPU2"}
    h = holder(props, nan_ids)
    assert h.kind != "localised_hardware"
    assert not any(p.scope.get("gpus") in (["h03/2"], ["h03/GPU2"]) for p in props)


def test_a_pinned_hosts_first_gpu_does_not_take_a_text_spread_over_its_gpus():
    # the NaNs on h03 name a different GPU each attempt: no second GPU is blamed
    f = fleet(first_gpu_bad=True)
    f.events = [
        replace(e, gpu=f"GPU{(e.step // 100) % 3}")
        if e.signature_id in (NAN, CHILD) and e.host == "h03" and e.gpu == "GPU2"
        else e
        for e in f.events
    ]
    props = analyze(f.events, f.signatures)
    assert [p.scope.get("gpus") for p in props if p.scope.get("hosts") == ["h03"]] == [["h03/GPU5"]]


def storm_fleet(*, lag_s: float) -> Fleet:
    """h03's GPU shows IMA again and again (pinned); the same text comes from a code bug on
    other hosts too, so it is no reliable precursor by itself. One storm follows h03's line."""
    f = Fleet()
    f.sig(IMA, "CUDA error: an illegal memory access was encountered", "cuda_runtime", "unknown")
    f.sig(WATCHDOG, "NCCL watchdog timeout in ALLREDUCE", "nccl_watchdog_timeout", "unknown")
    f.job("j1", HOSTS, 20_000)
    f.job("j2", HOSTS, 20_000, start=50_000.0)
    rng = random.Random(9)
    for s in range(1_000, 16_000, 1_000):
        f.event(IMA, "j1", s, "h03", gpu="GPU5", rank=29)
    for _ in range(12):
        j = rng.choice(["j1", "j2"])
        h = rng.randrange(4, 32)
        f.event(IMA, j, rng.randrange(20_000), HOSTS[h], gpu=f"GPU{h % 8}", rank=h * 8 + h % 8)
    t = f.jobs["j1"].start + 15_000 * f.jobs["j1"].step_s + lag_s
    for r in range(96):
        f.event(WATCHDOG, "j1", None, HOSTS[r // 8 + 4], rank=r + 32, at=t + r * 0.01)
    return f


def test_a_storm_after_a_pinned_hosts_line_is_that_hosts():
    f = storm_fleet(lag_s=600)
    props = analyze(f.events, f.signatures)
    h = holder(props, f.ids(WATCHDOG))
    assert h.kind == "localised_hardware" and h.scope["hosts"] == ["h03"]
    assert set(f.ids(WATCHDOG)) <= set(h.event_ids)
    assert any("storms of 'NCCL watchdog timeout in ALLREDUCE'" in line for line in h.evidence)


def test_a_storm_beyond_the_watchdogs_window_is_not_the_pinned_hosts():
    f = storm_fleet(lag_s=3 * 3600)
    props = analyze(f.events, f.signatures)
    h = holder(props, f.ids(WATCHDOG))
    assert h.kind == "storm_unexplained"
