"""Host incidents: one job's failure is a few lines within seconds (the Xid on the host, the CUDA
error on its rank, the launcher's child-failed line, the peers' NCCL errors), and one cause: the
host whose line of hardware meaning came first. Background texts (lines that mostly come alone)
neither lead nor join; storms after the failure in its job go to it."""

import pytest

from incidentbot.analysis import analyze
from incidentbot.analysis.synth import Fleet

XID, CUDA, CHILD, PEER, IMEX, WATCHDOG, WARN = 50, 51, 52, 53, 54, 55, 56


def fleet():
    f = Fleet()
    f.sig(XID, "Xid 48: double-bit ECC error", "xid", "hardware")
    f.sig(CUDA, "CUDA error: uncorrectable ECC error encountered", "cuda_runtime", "hardware")
    f.sig(CHILD, "torchrun child process failed (exitcode 1)", "launcher_elastic", "unknown")
    f.sig(PEER, "NCCL error: ncclRemoteError", "nccl_error", "network")
    f.sig(IMEX, "GPU health check failed: IMEX daemon unhealthy", "gpu_health_check", "hardware")
    f.sig(WATCHDOG, "Watchdog caught collective operation timeout: Timeout(ms)=600000", "nccl_watchdog_timeout")
    f.sig(WARN, "NCCL WARN socketStartConnect: Connect to <IP> failed", "nccl_warn", "network")
    for k in range(6):
        f.job(f"j{k}", [f"n{k}-{i:02d}" for i in range(4)], 20_000, start=k * 1_000)
    return f


def gpu_failure(f, job, host, t, *, peers=True, storm=False):
    """The lines of one GPU failure; returns their ids."""
    j = f.jobs[job]
    ids = [
        f.event(XID, job, None, host, at=t).id,
        f.event(CUDA, job, 4_000, host, rank=3, at=t + 1).id,
        f.event(CHILD, job, 4_000, host, rank=3, at=t + 8).id,
    ]
    if peers:
        ids += [f.event(PEER, job, 4_000, h, rank=9 + n, at=t + 12 + n).id for n, h in enumerate(j.hosts) if h != host]
    if storm:
        ids += [f.event(WATCHDOG, job, 4_000, j.hosts[r % 4], rank=r, at=t + 610 + r * 0.01).id for r in range(32)]
    return set(ids)


def holder(props, ids):
    hs = [p for p in props if set(p.event_ids) & ids]
    return hs


CASES = [  # (name, build -> {expected host: event ids} of host incidents, or None when no incident)
    (
        "two GPU failures on two hosts: two incidents, each with its peers' lines",
        lambda f: {
            "n1-02": gpu_failure(f, "j1", "n1-02", f.jobs["j1"].start + 9_000),
            "n3-01": gpu_failure(f, "j3", "n3-01", f.jobs["j3"].start + 15_000),
        },
    ),
    (
        "a storm after the failure in its job goes to that host",
        lambda f: {"n2-00": gpu_failure(f, "j2", "n2-00", f.jobs["j2"].start + 9_000, storm=True)},
    ),
]


@pytest.mark.parametrize("name,build", CASES, ids=[c[0] for c in CASES])
def test_host_incidents_fire(name, build):
    f = fleet()
    want = build(f)
    props = analyze(f.events, f.signatures)
    for host, ids in want.items():
        (p,) = holder(props, ids)
        assert p.kind == "host_incident" and p.scope["hosts"] == [host], name
        assert set(p.event_ids) == ids, name
        assert p.cause_class == "hardware" and p.title.startswith(f"Hardware fault on host {host}"), name


def test_background_hardware_text_alone_makes_no_incident():
    """A health check's known false positive logged alone on many hosts, jobs carrying on: no
    host incident (coverage still holds it, as one failure mode)."""
    f = fleet()
    for k in range(6):
        for n in range(3):
            f.event(IMEX, f"j{k}", None, f"n{k}-{n:02d}", at=f.jobs[f"j{k}"].start + 2_000 + 3_000 * n)
    props = analyze(f.events, f.signatures)
    assert not [p for p in props if p.kind == "host_incident"]
    (p,) = holder(props, f.ids(IMEX))
    assert p.kind == "unexplained"


def test_background_line_next_to_a_failure_does_not_join_it():
    f = fleet()
    for k in range(6):
        for n in range(3):
            f.event(IMEX, f"j{k}", None, f"n{k}-{n:02d}", at=f.jobs[f"j{k}"].start + 2_000 + 3_000 * n)
    t = f.jobs["j1"].start + 9_000
    ids = gpu_failure(f, "j1", "n1-02", t)
    stray = f.event(IMEX, "j1", None, "n1-03", at=t + 5).id
    props = analyze(f.events, f.signatures)
    (p,) = holder(props, ids)
    assert p.kind == "host_incident" and stray not in p.event_ids


def test_peer_warnings_join_only_when_they_come_with_failures():
    """Benign-sounding peer warnings right after a failure join it; the same warning text logged
    at random (the jobs carry on) stays out of any incident."""
    f = fleet()
    t = f.jobs["j1"].start + 9_000
    ids = gpu_failure(f, "j1", "n1-02", t, peers=False)
    warns = {f.event(WARN, "j1", 4_000, h, rank=9, at=t + 20).id for h in ("n1-00", "n1-01", "n1-03")}
    props = analyze(f.events, f.signatures)
    (p,) = holder(props, ids)
    assert warns <= set(p.event_ids)

    g = fleet()
    ids = gpu_failure(g, "j1", "n1-02", g.jobs["j1"].start + 9_000, peers=False)
    chatter = {g.event(WARN, f"j{k}", 100 * k, f"n{k}-01", at=g.jobs[f"j{k}"].start + 500 * k + 40).id for k in range(6)}
    props = analyze(g.events, g.signatures)
    (p,) = holder(props, ids)
    assert not chatter & set(p.event_ids)


def test_lone_hardware_line_the_job_carried_on_after_is_no_incident():
    f = fleet()
    e = f.event(XID, "j2", None, "n2-01", at=f.jobs["j2"].start + 9_000)
    props = analyze(f.events, f.signatures)
    assert not [p for p in props if p.kind == "host_incident" and e.id in p.event_ids]


def test_lone_hardware_line_the_job_stopped_at_is_that_hosts_failure():
    f = fleet()
    f.job("jx", ["x-00", "x-01", "x-02", "x-03"], 5_000, start=200)
    e = f.event(XID, "jx", None, "x-02", at=f.jobs["jx"].start + 5_000 * 2.0 - 5)
    props = analyze(f.events, f.signatures)
    (p,) = holder(props, {e.id})
    assert p.kind == "host_incident" and p.scope["hosts"] == ["x-02"]
