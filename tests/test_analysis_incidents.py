"""Single incidents: one job's failure begun by one host's own hardware or network error.

Where it must fire (the kernel's line under the FQDN with a PCI bus id, the application's error
under the short name with the GPU index, the peers' errors) and where it must stay silent (a
hardware-sounding line logged whether or not anything fails; the same text on many hosts at once;
one line followed by nothing)."""

import pytest

from incidentbot.analysis import analyze
from incidentbot.analysis.synth import Fleet

XID48, ECC, REMOTE, CHILD, LINK, WQ = 60, 61, 62, 63, 64, 65
NODES = [f"node{i:03d}" for i in range(1, 17)]


def fleet():
    f = Fleet()
    f.sig(XID48, "Xid 48: double-bit ECC error", "xid", "hardware")
    f.sig(ECC, "CUDA error: uncorrectable ECC error encountered", "cuda_runtime", "hardware")
    f.sig(REMOTE, "NCCL error: ncclRemoteError", "nccl_error", "network")
    f.sig(CHILD, "torchrun child process failed (exitcode 1)", "launcher_elastic", "unknown")
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
    ids.add(f.event(CHILD, job, step, host, gpu=index, rank=3, at=t + 8).id)
    others = [h for h in j.hosts if h != host]
    for k in range(peers):
        ids.add(f.event(REMOTE, job, step, others[k], rank=8 * (k + 1), at=t + 10 + k).id)
    return ids


def host_hyps(props):
    return [p for p in props if p.kind == "localised_hardware"]


def test_one_incident_is_one_hypothesis_on_its_host():
    f = fleet()
    ids = gpu_incident(f, "j1", "node003", 4_000)
    (p,) = host_hyps(analyze(f.events, f.signatures))
    assert p.scope["hosts"] == ["node003"]
    assert p.scope["gpus"] == ["node003/3"]  # the bus id 0000:4e:00.0 tied to index 3
    assert set(p.event_ids) == ids
    assert p.cause_class == "hardware"
    assert any("came first" in line for line in p.evidence)


def test_two_hosts_two_hypotheses_and_two_gpus_of_one_host_two_hypotheses():
    f = fleet()
    a = gpu_incident(f, "j1", "node003", 4_000)
    b = gpu_incident(f, "j2", "node012", 9_000)
    c = gpu_incident(f, "j1", "node003", 15_000, pci="0000:b7:00.0", index="6")
    by_ids = {frozenset(p.event_ids): p for p in host_hyps(analyze(f.events, f.signatures))}
    assert set(by_ids) == {frozenset(a), frozenset(b), frozenset(c)}
    assert by_ids[frozenset(c)].scope["gpus"] == ["node003/6"]


def test_the_same_gpu_failing_twice_is_one_hypothesis():
    f = fleet()
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
def test_silent(case):
    f = fleet()
    j = f.jobs["j1"]
    if case == "background":
        for k in range(40):
            f.event(WQ, "j1", None, NODES[k % 8], at=j.start + 500 * k)
        # two unrelated errors happen to follow it: still background
        f.event(CHILD, "j1", 250, NODES[0], rank=0, at=j.start + 20)
        f.event(CHILD, "j1", 1250, NODES[1], rank=8, at=j.start + 520)
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
    f = fleet()
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
    assert [p for p in analyze(f.events, f.signatures) if p.kind in ("node_failure", "localised_hardware")] == []


def test_an_xid_of_any_class_begins_an_incident_on_its_gpu():
    """Xid 13 (the driver's SM exception: the code's bad access or the GPU's) then the app's illegal
    memory access on the same GPU: one incident, whatever the Xid's class."""
    f = fleet()
    xid13, ima = 80, 81
    f.sig(xid13, "Xid 13: shader/SM exception", "xid", "software")
    f.sig(ima, "CUDA error: an illegal memory access was encountered", "cuda_runtime", "unknown")
    t = f.jobs["j1"].start + 6_000
    ids = {f.event(xid13, "j1", None, "node004.cluster.example.com", gpu="0000:9a:00.0", at=t).id}
    ids.add(f.event(ima, "j1", 3_000, "node004", gpu="4", rank=28, at=t + 1.2).id)
    (p,) = host_hyps(analyze(f.events, f.signatures))
    assert set(p.event_ids) == ids and p.scope["gpus"] == ["node004/4"]
