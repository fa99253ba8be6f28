"""One GPU of a host: a bad GPU concentrates on one device even when its host alone is not
significant; a line every host logs from local rank 0 (GPU 0 everywhere) is no GPU's fault. And
the PCI bus id <-> index tie the GPU rules read."""

import random

import pytest

from incidentbot.analysis import analyze
from incidentbot.analysis.gpus import device_of
from incidentbot.analysis.index import Index
from incidentbot.analysis.model import Constraints
from incidentbot.analysis.settings import Settings
from incidentbot.analysis.synth import Fleet

IMA = 70
HOSTS = [f"10.0.{i // 8}.{10 + i % 8}" for i in range(32)]


def fleet():
    f = Fleet()
    f.sig(IMA, "CUDA error: an illegal memory access was encountered", "cuda_runtime", "unknown")
    for k in range(4):
        f.job(f"j{k}", HOSTS[8 * k : 8 * k + 8], 20_000, start=10 * k)
    return f


@pytest.mark.parametrize(
    "case, fires",
    [
        ("bad_gpu", True),  # 6 on GPU 6 of one host, 20 spread over every host and GPU
        ("rank0_everywhere", False),  # GPU 0 of every host: the line is local rank 0's
        ("spread", False),  # 30 spread over every host and GPU
    ],
)
def test_one_gpu_of_a_host(case, fires):
    f = fleet()
    rng = random.Random(7)
    n_spread = 20 if case == "bad_gpu" else 30
    for _ in range(n_spread):
        k = rng.randrange(4)
        h = rng.choice(f.jobs[f"j{k}"].hosts)
        g = "0" if case == "rank0_everywhere" else str(rng.randrange(8))
        f.event(IMA, f"j{k}", rng.randrange(20_000), h, gpu=g, rank=rng.randrange(64))
    if case == "bad_gpu":
        for k in range(6):
            f.event(IMA, "j0", 1_000 + 3_000 * k, HOSTS[3], gpu="6", rank=3)
    hw = [p for p in analyze(f.events, f.signatures) if p.kind == "localised_hardware"]
    if not fires:
        assert hw == []
        return
    (p,) = hw
    assert p.scope["gpus"][0].endswith("/6") and len(p.event_ids) >= 6
    assert any("occurrences on GPU 6 of host" in line for line in p.evidence)  # the host alone is not enough


def test_a_network_text_on_one_bus_id_is_no_gpus_fault():
    """The layout of ``bad_gpu`` above, but the text means network and names a PCI bus id (the
    NIC's, as an InfiniBand completion error does): no GPU of the host is blamed."""
    f = fleet()
    ib = 71
    f.sig(ib, "NET/IB : Got completion with error 12", "infiniband_rdma", "network")
    rng = random.Random(7)
    for _ in range(20):
        k = rng.randrange(4)
        h = rng.choice(f.jobs[f"j{k}"].hosts)
        f.event(ib, f"j{k}", rng.randrange(20_000), h, gpu=f"0000:{rng.randrange(16, 250):02x}:00.0")
    for k in range(6):
        f.event(ib, "j0", 1_000 + 3_000 * k, HOSTS[3], gpu="0000:5d:00.0", rank=3)
    assert [p.scope for p in analyze(f.events, f.signatures) if "gpus" in p.scope] == []


def test_pci_bus_id_tied_to_index_from_events_close_on_one_host():
    f = fleet()
    j = f.jobs["j0"]
    a = f.event(IMA, "j0", None, HOSTS[2], gpu="0000:4e:00.0", at=j.start + 100)
    f.event(IMA, "j0", 50, HOSTS[2], gpu="3", at=j.start + 101.5)
    # another host shows the bus id alone: read through the fleet's pairing
    b = f.event(IMA, "j1", None, HOSTS[9], gpu="0000:4e:00.0", at=j.start + 5_000)
    # two indices near one bus id: no tie
    c = f.event(IMA, "j2", None, HOSTS[17], gpu="0000:b7:00.0", at=j.start + 9_000)
    f.event(IMA, "j2", 10, HOSTS[17], gpu="5", at=j.start + 9_001)
    f.event(IMA, "j2", 10, HOSTS[17], gpu="6", at=j.start + 9_002)
    ix = Index(f.events, f.signatures, None, Constraints(), Settings())
    pos = {e.id: n for n, e in enumerate(ix.ev)}
    assert device_of(ix, pos[a.id]) == "3"
    assert device_of(ix, pos[b.id]) == "3"
    assert device_of(ix, pos[c.id]) == "pci:0000:b7:00"


@pytest.mark.parametrize("gpu, apart", [("2", True), ("6", False)])
def test_an_incident_on_another_gpu_of_a_blamed_host_stays_apart(gpu, apart):
    """GPU 6 of a host blamed by the GPU-level pass; then an ECC incident on that host (the kernel's
    Xid with the bus id, the app's error with the index, a peer's error): on GPU 2 it is a
    hypothesis of its own, on GPU 6 it joins the blamed GPU's."""
    f = fleet()
    xid, ecc, remote = 72, 73, 74
    f.sig(xid, "Xid 48: double-bit ECC error", "xid", "hardware")
    f.sig(ecc, "CUDA error: uncorrectable ECC error encountered", "cuda_runtime", "hardware")
    f.sig(remote, "NCCL error: ncclRemoteError", "nccl_error", "network")
    rng = random.Random(7)
    for _ in range(20):
        k = rng.randrange(4)
        f.event(IMA, f"j{k}", rng.randrange(20_000), rng.choice(f.jobs[f"j{k}"].hosts), gpu=str(rng.randrange(8)))
    bad = {f.event(IMA, "j0", 1_000 + 3_000 * k, HOSTS[3], gpu="6", rank=3).id for k in range(6)}
    j = f.jobs["j0"]
    t = j.start + 17_500 * j.step_s
    inc = {f.event(xid, "j0", None, f"{HOSTS[3]}", gpu=f"0000:{40 + int(gpu):02x}:00.0", at=t).id}
    inc.add(f.event(ecc, "j0", 17_500, HOSTS[3], gpu=gpu, rank=3, at=t + 1.5).id)
    inc.add(f.event(remote, "j0", 17_500, HOSTS[5], rank=40, at=t + 10).id)
    props = analyze(f.events, f.signatures)
    (hb,) = [p for p in props if bad & set(p.event_ids)]
    (hi,) = [p for p in props if inc & set(p.event_ids)]
    assert bad <= set(hb.event_ids) and inc <= set(hi.event_ids)
    assert (hb is not hi) == apart
    if apart:
        assert hi.kind == "host_incident" and hi.scope["gpus"] == [f"{HOSTS[3]}/{gpu}"]
