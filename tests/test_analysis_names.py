"""Name structure without a topology file: one host under its spellings, SLURM node lists in the
host field, and groups from names (an IP /24 per leaf switch) tested like switches."""

import random

import pytest

from incidentbot.analysis import analyze
from incidentbot.analysis.synth import Fleet

XID79, UNKNOWN, TIMELIMIT, IB = 50, 51, 52, 53


def fleet(names):
    f = Fleet()
    f.sig(XID79, "Xid 79 GPU fallen off the bus", "xid", "hardware")
    f.sig(UNKNOWN, "CUDA error: unknown error", "cuda_runtime", "unknown")
    f.sig(TIMELIMIT, "SLURM: job cancelled at time limit", "slurm", "infrastructure")
    f.sig(IB, "NET/IB completion error", "infiniband_rdma", "network")
    # each job spans both halves (both subnets), as a scheduler places them
    f.job("j1", names[:4] + names[8:12], 20_000)
    f.job("j2", names[4:8] + names[12:16], 20_000, start=100)
    return f


NODES = [f"node{i:03d}" for i in range(1, 17)]
IPS = [f"10.1.{i // 8}.{11 + i % 8}" for i in range(16)]


def test_fqdn_kernel_lines_and_short_names_are_one_host():
    f = fleet(NODES)
    rng = random.Random(1)
    for _ in range(10):
        s = rng.randrange(20_000)
        f.event(XID79, "j1", None, "node003.cluster.example.com", gpu="GPU5", at=f.jobs["j1"].start + s * 2)
        f.event(UNKNOWN, "j1", s, "node003", rank=21, gpu="GPU5", dt=3)
    (p,) = [p for p in analyze(f.events, f.signatures) if p.kind == "localised_hardware"]
    assert p.scope["hosts"] == ["node003"] and {XID79, UNKNOWN} <= set(p.signature_ids)


def test_a_node_list_in_the_host_field_is_no_faulty_host():
    """A scheduler line about the whole job names all its nodes: no "faulty GPU on node[001-008]"."""
    f = fleet(NODES)
    for k in range(12):
        f.event(
            TIMELIMIT,
            "j1" if k % 2 else "j2",
            None,
            "node[001-004,009-012]" if k % 2 else "node[005-008,013-016]",
            at=f.jobs["j1"].start + 3_000 * k,
        )
    props = analyze(f.events, f.signatures)
    assert not [p for p in props if p.kind in ("localised_hardware", "switch")]


def ib_spread(f, hosts_hit, n=14, seed=4):
    rng = random.Random(seed)
    for k in range(n):
        h = hosts_hit[k % len(hosts_hit)]
        j = "j1" if h in f.jobs["j1"].hosts else "j2"
        f.event(IB, j, rng.randrange(20_000), h, rank=rng.randrange(64))


def test_a_subnet_is_tested_like_a_switch():
    f = fleet(IPS)
    ib_spread(f, IPS[8:13])  # five hosts of 10.1.1.0/24, none alone enough
    (p,) = [p for p in analyze(f.events, f.signatures) if p.kind == "switch"]
    assert p.scope["switches"] == ["subnet 10.1.1.0/24"] and p.cause_class == "network"
    assert "host names" in p.title


def test_errors_spread_over_both_subnets_name_no_switch():
    f = fleet(IPS)
    ib_spread(f, IPS[3:5] + IPS[9:12])
    assert not [p for p in analyze(f.events, f.signatures) if p.kind == "switch"]


IMA = 54


@pytest.mark.parametrize(
    "title, category, cause_class, switch",
    [
        ("NET/IB completion error", "infiniband_rdma", "network", True),
        ("c10d store: client socket timed out", "rendezvous_store", "unknown", True),
        # known wrong: a text from inside one process on one GPU, concentrated on one subnet's hosts
        # (the versions a code bug needs ran there), is no switch's doing
        ("CUDA error: an illegal memory access was encountered", "cuda_runtime", "unknown", False),
        ("NaN in gradient norm", "loss_instability", "unknown", False),
    ],
)
def test_a_subnet_is_blamed_only_for_a_text_a_shared_component_can_cause(title, category, cause_class, switch):
    f = fleet(IPS)
    f.sig(IMA, title, category, cause_class)
    rng = random.Random(4)
    hit = IPS[8:13]  # five hosts of 10.1.1.0/24, none alone enough
    for k in range(14):
        h = hit[k % len(hit)]
        j = "j1" if h in f.jobs["j1"].hosts else "j2"
        f.event(IMA, j, rng.randrange(20_000), h, rank=rng.randrange(64))
    switches = [p for p in analyze(f.events, f.signatures) if p.kind == "switch"]
    assert bool(switches) == switch
    if switch:
        assert switches[0].scope["switches"] == ["subnet 10.1.1.0/24"]
