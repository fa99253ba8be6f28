"""Host incidents: one job's failure is a few lines within seconds (the Xid on the host, the CUDA
error on its rank, the launcher's child-failed line, the peers' NCCL errors), and one cause: the
host whose line of hardware meaning came first. Background texts (lines that mostly come alone)
neither lead nor join; storms after the failure in its job go to it.

The second half: the kernel's line under the FQDN with a PCI bus id, the application's error
under the short name with the GPU index, the peers' errors (one hypothesis per host and GPU);
silent on a hardware-sounding line logged whether or not anything fails, the same text on many
hosts at once, one line followed by nothing; a node gone down (SLURM node failure naming the
job's node list, Kubernetes NodeNotReady)."""

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
    chatter = {
        g.event(WARN, f"j{k}", 100 * k, f"n{k}-01", at=g.jobs[f"j{k}"].start + 500 * k + 40).id for k in range(6)
    }
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


# --- per host and GPU, FQDN kernel lines, node-down incidents ---

XID48, ECC, REMOTE, CHILD_B, LINK, WQ = 60, 61, 62, 63, 64, 65
NODES = [f"node{i:03d}" for i in range(1, 17)]


def fleet_nodes():
    f = Fleet()
    f.sig(XID48, "Xid 48: double-bit ECC error", "xid", "hardware")
    f.sig(ECC, "CUDA error: uncorrectable ECC error encountered", "cuda_runtime", "hardware")
    f.sig(REMOTE, "NCCL error: ncclRemoteError", "nccl_error", "network")
    f.sig(CHILD_B, "torchrun child process failed (exitcode 1)", "launcher_elastic", "unknown")
    f.sig(LINK, "mlx5_core: Port 1 link down", "infiniband_rdma", "network")
    f.sig(WQ, "kernel: workqueue hogged CPU", "kernel", "hardware")
    f.job("j1", NODES[:8], 20_000)
    f.job("j2", NODES[8:], 20_000, start=100)
    return f


def gpu_incident(f, job, host, step, *, pci="0000:4e:00.0", index="3", peers=3):
    """The kernel's line (FQDN, bus id), the app's error (short name, index), peers' errors."""
    j = f.jobs[job]
    t = j.start + step * j.step_s
    ids = {f.event(XID48, job, None, f"{host}.cluster.example.com", gpu=pci, at=t).id}
    ids.add(f.event(ECC, job, step, host, gpu=index, rank=3, at=t + 1.5).id)
    ids.add(f.event(CHILD_B, job, step, host, gpu=index, rank=3, at=t + 8).id)
    others = [h for h in j.hosts if h != host]
    for k in range(peers):
        ids.add(f.event(REMOTE, job, step, others[k], rank=8 * (k + 1), at=t + 10 + k).id)
    return ids


def host_hyps(props):
    return [p for p in props if p.kind == "host_incident"]


def test_one_incident_is_one_hypothesis_on_its_host():
    f = fleet_nodes()
    ids = gpu_incident(f, "j1", "node003", 4_000)
    (p,) = host_hyps(analyze(f.events, f.signatures))
    assert p.scope["hosts"] == ["node003"]
    assert p.scope["gpus"] == ["node003/3"]  # the bus id 0000:4e:00.0 tied to index 3
    assert set(p.event_ids) == ids
    assert p.cause_class == "hardware"
    assert any("came first" in line for line in p.evidence)


def test_two_hosts_two_hypotheses_and_two_gpus_of_one_host_two_hypotheses():
    f = fleet_nodes()
    a = gpu_incident(f, "j1", "node003", 4_000)
    b = gpu_incident(f, "j2", "node012", 9_000)
    c = gpu_incident(f, "j1", "node003", 15_000, pci="0000:b7:00.0", index="6")
    by_ids = {frozenset(p.event_ids): p for p in host_hyps(analyze(f.events, f.signatures))}
    assert set(by_ids) == {frozenset(a), frozenset(b), frozenset(c)}
    assert by_ids[frozenset(c)].scope["gpus"] == ["node003/6"]


def test_the_same_gpu_failing_twice_is_one_hypothesis():
    f = fleet_nodes()
    a = gpu_incident(f, "j1", "node003", 4_000)
    b = gpu_incident(f, "j1", "node003", 15_000)
    (p,) = host_hyps(analyze(f.events, f.signatures))
    assert set(p.event_ids) == a | b


@pytest.mark.parametrize(
    "case",
    [
        "background",  # a hardware-sounding kernel line logged all day, now and then next to an error
        "same_moment_many_hosts",  # one text on four hosts at once: a switch or power, not a host
        "nothing_follows",  # one hardware line, the job carries on
    ],
)
def test_incident_silent(case):
    f = fleet_nodes()
    j = f.jobs["j1"]
    if case == "background":
        for k in range(40):
            f.event(WQ, "j1", None, NODES[k % 8], at=j.start + 500 * k)
        # two unrelated errors happen to follow it: still background
        f.event(CHILD_B, "j1", 250, NODES[0], rank=0, at=j.start + 20)
        f.event(CHILD_B, "j1", 1250, NODES[1], rank=8, at=j.start + 520)
    elif case == "same_moment_many_hosts":
        t = j.start + 8_000
        for k, h in enumerate(NODES[:4]):
            f.event(LINK, "j1", None, h, at=t + 0.1 * k)
            f.event(REMOTE, "j1", 4_000, h, rank=8 * k, at=t + 5 + k)
    else:
        f.event(XID48, "j1", None, "node003", gpu="0000:4e:00.0", at=j.start + 8_000)
    assert host_hyps(analyze(f.events, f.signatures)) == []


NODEFAIL, CONNECT, TIMELIMIT, NOTREADY = 66, 67, 68, 69


def fleet_down():
    f = fleet_nodes()
    f.sig(NODEFAIL, "SLURM: node failure", "slurm", "hardware")
    f.sig(CONNECT, "NCCL WARN: socketStartConnect: Connect to <IP> failed", "nccl_warn", "network")
    f.sig(TIMELIMIT, "SLURM: job cancelled due to time limit", "slurm", "infrastructure")
    f.sig(NOTREADY, "Warning NodeNotReady pod/<NAME> Node is not ready", "other", "unknown")
    return f


def peers_lose_it(f, job, t, n=5):
    hosts = f.jobs[job].hosts
    return {f.event(CONNECT, job, 4_000, hosts[1 + k % 6], rank=8 * k, at=t + 8 + 6 * k).id for k in range(n)}


def test_a_node_failure_naming_the_node_list_is_one_incident_with_its_peers_lines():
    f = fleet_down()
    t = f.jobs["j1"].start + 8_000
    a = {f.event(NODEFAIL, "j1", None, "node[001-008]", at=t).id} | peers_lose_it(f, "j1", t)
    t2 = f.jobs["j2"].start + 30_000
    b = {f.event(NODEFAIL, "j2", None, "node[009-016]", at=t2).id} | peers_lose_it(f, "j2", t2)
    props = [p for p in analyze(f.events, f.signatures) if p.kind == "node_failure"]
    assert sorted(set(p.event_ids) for p in props) == sorted([a, b], key=min)
    assert all(p.scope["jobs"] in (["j1"], ["j2"]) and "Node failure in job" in p.title for p in props)


def test_a_node_gone_not_ready_is_its_host():
    f = fleet_down()
    t = f.jobs["j1"].start + 8_000
    ids = {f.event(NOTREADY, "j1", None, "node005", at=t).id} | peers_lose_it(f, "j1", t)
    (p,) = host_hyps(analyze(f.events, f.signatures))
    assert p.scope["hosts"] == ["node005"] and set(p.event_ids) == ids


@pytest.mark.parametrize("case", ["time_limit_with_node_list", "node_failure_alone"])
def test_node_failure_silent(case):
    f = fleet_down()
    t = f.jobs["j1"].start + 8_000
    if case == "time_limit_with_node_list":  # the scheduler ends the job: not a node's failure
        f.event(TIMELIMIT, "j1", None, "node[001-008]", at=t)
        peers_lose_it(f, "j1", t)
    else:
        f.event(NODEFAIL, "j1", None, "node[001-008]", at=t)
    assert [
        p for p in analyze(f.events, f.signatures) if p.kind in ("node_failure", "host_incident", "localised_hardware")
    ] == []


def test_an_xid_of_any_class_begins_an_incident_on_its_gpu():
    """Xid 13 (the driver's SM exception: the code's bad access or the GPU's) then the app's illegal
    memory access on the same GPU: one incident, whatever the Xid's class."""
    f = fleet_nodes()
    xid13, ima = 80, 81
    f.sig(xid13, "Xid 13: shader/SM exception", "xid", "software")
    f.sig(ima, "CUDA error: an illegal memory access was encountered", "cuda_runtime", "unknown")
    t = f.jobs["j1"].start + 6_000
    ids = {f.event(xid13, "j1", None, "node004.cluster.example.com", gpu="0000:9a:00.0", at=t).id}
    ids.add(f.event(ima, "j1", 3_000, "node004", gpu="4", rank=28, at=t + 1.2).id)
    (p,) = host_hyps(analyze(f.events, f.signatures))
    assert set(p.event_ids) == ids and p.scope["gpus"] == ["node004/4"]


# --- a host with one blamed GPU: another device's failure there is a fault of its own ---

MLX, XID_NODEV, IMA, STORM = 70, 71, 72, 73


def fleet_devices():
    f = fleet_nodes()
    f.sig(MLX, "Mellanox/IB event: mlx5_core <PCI>: port module event: cable unplugged", "infiniband_rdma", "hardware")
    f.sig(XID_NODEV, "Xid 79: GPU has fallen off the bus", "xid", "hardware")
    f.sig(IMA, "CUDA error: an illegal memory access was encountered", "cuda_runtime", "unknown")
    f.sig(STORM, "Watchdog caught collective operation timeout: Timeout(ms)=600000", "nccl_watchdog_timeout")
    return f


def nic_failure(f, job, host, step):
    j = f.jobs[job]
    t = j.start + step * j.step_s
    ids = {f.event(MLX, job, None, host, at=t).id}
    others = [h for h in j.hosts if h != host]
    for k in range(3):
        ids.add(f.event(REMOTE, job, step, others[k], rank=8 * (k + 1), at=t + 3 + k).id)
    return ids


def xid_no_device(f, job, host, step):
    j = f.jobs[job]
    t = j.start + step * j.step_s
    return {
        f.event(XID_NODEV, job, None, host, at=t).id,
        f.event(CHILD_B, job, step, host, rank=3, at=t + 8).id,
    }


def ima_then_storm(f, job, host, step, gpu):
    """A rank's CUDA error on one GPU (no Xid), then the job's ranks time out ten minutes later."""
    j = f.jobs[job]
    t = j.start + step * j.step_s
    ids = {f.event(IMA, job, step, host, gpu=gpu, rank=5, at=t).id}
    ids.add(f.event(CHILD_B, job, step, host, gpu=gpu, rank=5, at=t + 8).id)
    ids |= {f.event(STORM, job, step, j.hosts[r % 8], rank=r, at=t + 605 + r * 0.01).id for r in range(48)}
    return ids


@pytest.mark.parametrize(
    "second, apart",
    [
        # an Xid naming no device, on the host whose GPU 3 is blamed: that GPU's
        (xid_no_device, False),
        # known wrong: a NIC's own event (mlx5: hardware by its words) on that host is no GPU's
        (nic_failure, True),
        # a CUDA error on GPU 6 of that host, which a storm followed, is not GPU 3's
        (lambda f, job, host, step: ima_then_storm(f, job, host, step, "6"), True),
    ],
    ids=["xid_without_device", "nic_event", "other_gpu_before_a_storm"],
)
def test_a_failure_of_another_device_of_a_blamed_host_is_its_own_hypothesis(second, apart):
    f = fleet_devices()
    a = gpu_incident(f, "j1", "node003", 4_000)
    b = second(f, "j1", "node003", 12_000)
    props = analyze(f.events, f.signatures)
    (pa,) = holder(props, a)
    assert pa.kind == "host_incident" and pa.scope["gpus"] == ["node003/3"]
    assert (not set(pa.event_ids) & b) == apart
    if not apart:
        assert set(pa.event_ids) >= b
        return
    (pb,) = holder(props, b)  # the second failure: one hypothesis of its own, on that host
    assert pb is not pa and pb.key != pa.key
    assert len(set(pb.event_ids) & b) >= len(b) - 1  # (a lone CUDA line before a storm: below coverage's 3)


ODD, NAN_T = 57, 58


def test_the_launchers_line_after_a_failure_goes_with_that_failure():
    """'child process failed' comes after every kind of failure: a leftover line goes with the
    failure it follows in its job (here a GPU localised by its Xid lines, the last of which stopped
    the job), not into one hypothesis of every launcher line. After a regression's line it stays
    apart: a regression holds its lines by versions, a guess line by line, and the launcher's line
    would only repeat the guess."""
    f = fleet()
    f.sig(ODD, "RuntimeError: something odd in the fused kernel", "python_exception", "unknown")
    f.sig(NAN_T, "NaN loss", "loss_instability", "software")
    for k in range(6, 12):  # six more jobs, the later three on a new torch
        versions = {"torch": "2.3" if k >= 9 else "2.2"}
        f.job(f"j{k}", [f"n{k}-{i:02d}" for i in range(4)], 20_000, start=k * 1_000, versions=versions)
    xids = {f.event(XID, "j2", None, "n2-01", at=f.jobs["j2"].start + 2_000 + 3_000 * n).id for n in range(5)}
    after_xid = f.event(CHILD, "j2", 9_000, "n2-01", rank=5, at=f.jobs["j2"].start + 14_030).id
    for n, k in enumerate((1, 3, 5)):  # the launcher's line after other failures too
        t = f.jobs[f"j{k}"].start + 6_000 + 900 * n
        f.event(ODD, f"j{k}", 3_000, f"n{k}-01", rank=5, at=t)
        f.event(CHILD, f"j{k}", 3_000, f"n{k}-01", rank=5, at=t + 40)
    after_nan = set()
    for n in range(12):  # NaN on the new torch only; three of them followed by the launcher's line
        j, host = f"j{9 + n % 3}", f"n{9 + n % 3}-0{n % 4}"
        t = f.jobs[j].start + 2_000 + 1_500 * n
        f.event(NAN_T, j, 1_000 + 700 * n, host, rank=n, at=t)
        if n % 4 == 0:
            after_nan.add(f.event(CHILD, j, 1_000 + 700 * n, host, rank=n, at=t + 40).id)
    props = analyze(f.events, f.signatures)
    (gpu,) = holder(props, xids)
    assert gpu.kind == "localised_hardware" and set(gpu.event_ids) == xids | {after_xid}
    assert any("1 line right after this cause's own in the same job" in line for line in gpu.evidence)
    (r,) = [p for p in props if p.kind == "regression"]
    assert not (after_nan & set(r.event_ids))
