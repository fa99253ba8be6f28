"""Localisation to a host / switch, normalised by exposure; and where it must stay silent."""

import random

from incidentbot.analysis import analyze
from incidentbot.analysis.synth import Fleet

XID79, UNKNOWN, IB, WARN = 10, 11, 12, 13


def hosts(n, prefix="h"):
    return [f"{prefix}{i:02d}" for i in range(n)]


def fleet_two_jobs():
    f = Fleet()
    f.sig(XID79, "Xid 79 GPU fallen off the bus", "xid", "hardware")
    f.sig(UNKNOWN, "CUDA error: unknown error", "cuda_runtime", "unknown")
    f.sig(IB, "NET/IB completion error", "infiniband_rdma", "network")
    f.sig(WARN, "some warning", "misc", "unknown")
    f.job("j1", hosts(8), 20_000)
    f.job("j2", hosts(16)[8:], 20_000, start=100)
    return f


def rules_fired(props):
    """Proposals an evidence rule made (coverage adds "cause not yet known" ones for the rest)."""
    return [p for p in props if p.kind not in ("unexplained", "storm_unexplained", "shared_component")]


def test_bad_host_is_found_with_gpu_and_hardware_class():
    f = fleet_two_jobs()
    rng = random.Random(1)
    for _ in range(12):
        s = rng.randrange(20_000)
        f.event(XID79, "j1", None, "h03", gpu="GPU5", at=f.jobs["j1"].start + s * 2)
        f.event(UNKNOWN, "j1", s, "h03", rank=29, gpu="GPU5", dt=3)
    props = analyze(f.events, f.signatures)
    assert len(props) == 1
    p = props[0]
    assert p.kind == "localised_hardware"
    assert p.cause_class == "hardware"
    assert p.scope["hosts"] == ["h03"]
    assert p.scope["gpus"] == ["h03/GPU5"]
    assert set(p.signature_ids) == {XID79, UNKNOWN}
    assert set(p.event_ids) == f.ids(XID79) | f.ids(UNKNOWN)
    assert any("12 of 12 occurrences on host h03" in line for line in p.evidence)
    assert 0.5 < p.confidence <= 0.97


def test_busy_host_is_not_broken():
    # h00 runs in five jobs, the others in one: it logs five times more of everything
    f = Fleet()
    f.sig(WARN, "some warning", "misc", "unknown")
    f.job("A", hosts(8), 10_000)
    for k in "BCDE":
        f.job(k, ["h00"], 10_000, start=50 * ord(k))
    rng = random.Random(2)
    for j, job in f.jobs.items():
        for h in job.hosts:
            for _ in range(4):
                f.event(WARN, j, rng.randrange(10_000), h, rank=0 if h == "h00" else 8)
    assert rules_fired(analyze(f.events, f.signatures)) == []


def test_scattered_events_are_not_localised():
    f = fleet_two_jobs()
    rng = random.Random(3)
    for _ in range(30):
        j = rng.choice(["j1", "j2"])
        f.event(WARN, j, rng.randrange(20_000), rng.choice(f.jobs[j].hosts), rank=rng.randrange(64))
    assert rules_fired(analyze(f.events, f.signatures)) == []


def test_a_single_event_is_silent():
    f = fleet_two_jobs()
    f.event(XID79, "j1", None, "h03", gpu="GPU1", at=f.jobs["j1"].start + 500)
    assert rules_fired(analyze(f.events, f.signatures)) == []


def test_switch_with_topology():
    f = fleet_two_jobs()
    topo = {h: ("sw-a" if int(h[1:]) < 4 else "sw-b" if int(h[1:]) < 8 else "sw-c") for h in hosts(16)}
    rng = random.Random(4)
    for h in ["h00", "h01", "h02", "h03"]:
        for _ in range(3):
            f.event(IB, "j1", rng.randrange(20_000), h, rank=int(h[1:]) * 8)
    props = analyze(f.events, f.signatures, topology=topo)
    assert len(props) == 1
    assert props[0].kind == "switch"
    assert props[0].cause_class == "network"
    assert props[0].scope["switches"] == ["sw-a"]
    # without the topology, no single host stands out
    assert all(p.kind != "localised_hardware" or len(p.event_ids) < 12 for p in analyze(f.events, f.signatures))


def test_rank0_logger_is_not_a_host_fault():
    # loss lines come from rank 0, which always sits on the job's first host
    f = Fleet()
    f.sig(WARN, "loss spike", "loss_instability", "software")
    f.job("j1", hosts(8), 20_000)
    f.job("j2", hosts(16)[8:], 20_000)
    rng = random.Random(5)
    for j in ("j1", "j2"):
        for _ in range(15):
            f.event(WARN, j, rng.randrange(20_000), f.jobs[j].hosts[0], rank=0)
    assert rules_fired(analyze(f.events, f.signatures)) == []


def test_known_meaning_lowers_the_bar_for_localisation_and_says_so():
    """Three occurrences on one of sixteen hosts: enough for a text that itself means hardware
    (Xid 79) at the looser threshold, with the evidence line saying why; not for a warning of no
    known meaning, which stays silent at that count."""

    def one_host(sig, n):
        f = fleet_two_jobs()
        f.job("j3", hosts(16), 20_000, start=500)
        rng = random.Random(1)
        for _ in range(n):
            f.event(sig, "j3", rng.randrange(20_000), "h03", rank=29)
        return analyze(f.events, f.signatures)

    (xid,) = one_host(XID79, 3)
    assert xid.kind == "localised_hardware" and xid.scope["hosts"] == ["h03"]
    assert any(line.startswith("known meaning: Xid 79 GPU fallen off the bus means hardware") for line in xid.evidence)
    assert rules_fired(one_host(WARN, 3)) == []
    (warn,) = rules_fired(one_host(WARN, 5))  # with more occurrences the warning's own evidence suffices
    assert not any(line.startswith("known meaning") for line in warn.evidence)
