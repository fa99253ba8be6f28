"""Host and GPU names: one spelling each, SLURM host lists, candidate shared components.

Table-driven; each table ends with the known-wrong cases (spellings we deliberately do not
unify, or inputs that must be refused), kept in the open.
"""

import time

import pytest

from incidentbot.analysis.names import (
    BLOCK_SIZES,
    candidate_groups,
    canonical_host,
    expand_nodelist,
    link_gpu_ids,
    normalise_gpu,
)

CANONICAL = [
    ("gpu-r12-n07", "gpu-r12-n07"),
    ("gpu-r12-n07.cluster.example.com", "gpu-r12-n07"),
    ("GPU-R12-N07.Cluster.Example.COM.", "gpu-r12-n07"),
    ("  node001 ", "node001"),
    ("10.4.7.12", "10.4.7.12"),  # an address stays whole
    ("c1-gpu0007", "c1-gpu0007"),
]
CANONICAL_KNOWN_WRONG = [
    # not unified on purpose: an address and a name of one host cannot be tied from the names
    ("10.4.7.12", "gpu-r12-n07"),
    # 999 is no octet, so this is a dotted name and is cut like one
    ("10.4.7.999", "10"),
    # IPv6 and host:port are left to the caller
    ("fe80::1", "fe80::1"),
]


@pytest.mark.parametrize("name,want", CANONICAL)
def test_canonical_host(name, want):
    assert canonical_host(name) == want


@pytest.mark.parametrize("a,b", [CANONICAL_KNOWN_WRONG[0]])
def test_canonical_host_does_not_unify_an_address_with_a_name(a, b):
    assert canonical_host(a) != canonical_host(b)


@pytest.mark.parametrize("name,want", CANONICAL_KNOWN_WRONG[1:])
def test_canonical_host_known_wrong(name, want):
    assert canonical_host(name) == want


NODELISTS = [
    ("node001", ["node001"]),
    ("", []),
    ("node[097-099,120]", ["node097", "node098", "node099", "node120"]),
    ("gpu-[01-04]-ib", ["gpu-01-ib", "gpu-02-ib", "gpu-03-ib", "gpu-04-ib"]),
    ("node[1-2],gpu-[08-10]", ["node1", "node2", "gpu-08", "gpu-09", "gpu-10"]),
    ("n[8-11]", ["n8", "n9", "n10", "n11"]),  # no padding when the lower bound has none
    ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
    ("a,b", ["a", "b"]),
    ("node[007]", ["node007"]),
]
NODELIST_ERRORS = [
    ("node[1-3", "not closed"),
    ("node1-3]", "without '['"),
    ("node[3-1]", "backwards"),
    ("node[a-b]", "not a number"),
    ("node[[1-2]]", "nested"),
    ("node[1-2],,x", "empty name"),
    ("node[1-5000]", "more than 4096"),
    ("node[1-1000000000000]", "more than 4096"),  # refused before anything is expanded
    ("r[1-100]n[1-100]", "more than 4096"),
]


@pytest.mark.parametrize("s,want", NODELISTS)
def test_expand_nodelist(s, want):
    assert expand_nodelist(s) == want


@pytest.mark.parametrize("s,needle", NODELIST_ERRORS)
def test_expand_nodelist_refuses(s, needle):
    with pytest.raises(ValueError, match=needle.replace("[", r"\[")):
        expand_nodelist(s)


def test_expand_nodelist_limit_is_a_keyword():
    assert len(expand_nodelist("n[1-10]", limit=10)) == 10
    with pytest.raises(ValueError):
        expand_nodelist("n[1-10],m1", limit=10)


def test_expand_nodelist_is_linear_on_hostile_input():
    # a long list of commas and brackets: bounded work, a clear error
    s = "n[" + ",".join(["1"] * 200_000) + "]"
    t0 = time.perf_counter()
    with pytest.raises(ValueError):
        expand_nodelist(s)
    assert time.perf_counter() - t0 < 2.0  # generous: a correctness guard against quadratic blow-up


GPUS = [
    ("3", "3"),
    ("03", "3"),
    ("GPU3", "3"),
    ("gpu 3", "3"),
    ("GPU-3", "3"),
    ("cuda:3", "3"),
    ("0000:91:00.0", "pci:0000:91:00"),
    ("00000000:91:00.0", "pci:0000:91:00"),
    ("91:00.0", "pci:0000:91:00"),
    ("PCI:0000:91:00", "pci:0000:91:00"),
    ("0000:AB:00.0", "pci:0000:ab:00"),
    ("0001:1a:00.0", "pci:0001:1a:00"),
    ("GPU-8a3b1c2d-1111-2222-3333-444455556666", "GPU-8a3b1c2d-1111-2222-3333-444455556666"),
    ("MIG-8a3b1c2d-1111-2222-3333-444455556666", "MIG-8a3b1c2d-1111-2222-3333-444455556666"),
    (None, None),
    ("", None),
    ("  ", None),
]
GPUS_KNOWN_WRONG = [
    # unrecognised spellings are kept as given (stripped), not guessed at
    ("H100 #3", "H100 #3"),
    # a UUID is not tied to an index from its text alone
    ("GPU-8a3b1c2d-1111-2222-3333-444455556666", "GPU-8a3b1c2d-1111-2222-3333-444455556666"),
    # a 4-digit index is no index (no node has 1000 GPUs): kept as given
    ("GPU1000", "GPU1000"),
]


@pytest.mark.parametrize("gpu,want", GPUS + GPUS_KNOWN_WRONG)
def test_normalise_gpu(gpu, want):
    assert normalise_gpu(gpu) == want


def test_link_gpu_ids():
    obs = [
        ("gpu-r12-n07.cluster.example.com", "GPU3", "0000:91:00.0"),
        ("gpu-r12-n07", "3", "91:00.0"),
        ("node001", "1", "00000000:1a:00.0"),
        ("node001", "2", "1a:00.0"),  # a tie between two indices: left out
        ("node002", "5", "0000:2a:00.0"),
        ("node002", "5", "0000:2a:00.0"),
        ("node002", "6", "0000:2a:00.0"),  # a minority reading: the majority wins
        ("node003", "not-an-index", "0000:2a:00.0"),  # skipped
        ("node003", "4", "GPU-8a3b1c2d-1111-2222-3333-444455556666"),  # no PCI id: skipped
        ("", "1", "0000:2a:00.0"),  # no host: skipped
    ]
    assert link_gpu_ids(obs) == {
        ("gpu-r12-n07", "pci:0000:91:00"): "3",
        ("node002", "pci:0000:2a:00"): "5",
    }


def _hosts_of(groups, label):
    return sorted(groups[label])


def test_candidate_groups_subnets_racks_prefixes_ranges():
    hosts = (
        [f"10.4.7.{i}" for i in range(1, 5)]
        + ["10.4.8.1", "10.4.8.2"]
        + [f"gpu-r12-n{i:02d}" for i in range(1, 5)]
        + [f"gpu-r13-n{i:02d}" for i in range(1, 3)]
        + [f"node{i:03d}" for i in range(1, 41)]
    )
    g = candidate_groups(hosts)
    assert _hosts_of(g, "subnet 10.4.7.0/24") == [f"10.4.7.{i}" for i in range(1, 5)]
    assert "subnet 10.4.8.0/24" in g
    assert _hosts_of(g, "rack gpu-r12") == [f"gpu-r12-n{i:02d}" for i in range(1, 5)]
    assert "rack gpu-r13" in g
    assert "prefix gpu-" in g  # both racks together
    assert _hosts_of(g, "range node001-node008") == [f"node{i:03d}" for i in range(1, 9)]
    assert _hosts_of(g, "range node033-node040") == [f"node{i:03d}" for i in range(33, 41)]
    assert "range node033-node048" not in g  # the same members as node033-node040 (only 40 nodes)
    assert "range node001-node016" in g and "range node001-node032" in g
    # prefix gpu-r12- has the members of rack gpu-r12: only the first label is kept
    assert "prefix gpu-r12-" not in g
    # deterministic order: subnets, racks, prefixes, ranges; naturally sorted within a kind
    kinds = [label.split()[0] for label in g]
    assert kinds == sorted(kinds, key=["subnet", "rack", "prefix", "range"].index)
    assert list(candidate_groups(list(reversed(hosts)))) == list(g)


def test_candidate_groups_rack_token_spellings():
    hosts = ["dc1-rack12-node1", "dc1-rack12-node2", "dc1-rk3-n1", "dc1-rk3-n2", "r7n01", "r7n02", "r8n01"]
    g = candidate_groups(hosts)
    assert _hosts_of(g, "rack dc1-rack12") == ["dc1-rack12-node1", "dc1-rack12-node2"]
    assert _hosts_of(g, "rack dc1-rk3") == ["dc1-rk3-n1", "dc1-rk3-n2"]
    assert _hosts_of(g, "rack r7") == ["r7n01", "r7n02"]
    # rack 12 of one cluster is not rack 12 of another
    g2 = candidate_groups(["a-r12-n1", "a-r12-n2", "b-r12-n1", "b-r12-n2", "b-r13-n1"])
    assert "rack a-r12" in g2 and "rack b-r12" in g2


def test_candidate_groups_spellings_of_one_host_fall_together():
    hosts = ["gpu-r12-n07", "gpu-r12-n07.cluster.example.com", "gpu-r12-n08", "gpu-r13-n01", "gpu-r13-n02"]
    g = candidate_groups(hosts)
    assert g["rack gpu-r12"] == frozenset(hosts[:3])


def test_candidate_groups_blocks_start_at_zero_when_a_node_is_numbered_zero():
    hosts = [f"c1-gpu{i:04d}" for i in range(0, 24)]
    g = candidate_groups(hosts)
    assert _hosts_of(g, "range c1-gpu0000-c1-gpu0007") == hosts[:8]
    assert _hosts_of(g, "range c1-gpu0016-c1-gpu0023") == hosts[16:24]
    assert set(BLOCK_SIZES) == {8, 16, 32}


CANDIDATE_KNOWN_WRONG = [
    # (hosts, label that must NOT appear, why)
    ([f"node{i:03d}" for i in range(1, 9)], "range node001-node008", "a group of every host says nothing"),
    (["10.4.7.1", "10.4.8.1", "10.4.9.1"], "subnet 10.4.7.0/24", "below min_size"),
    (["rtx01", "rtx02", "gpu1"], "rack rtx", "'rtx' is no rack token"),
    (["10.4.7.1", "10.4.7.2", "10.9.9.9"], "prefix 10.", "addresses have no name prefix"),
    (["node1", "node2", "node3", "other1"], "rack node", "no rack token here"),
]


@pytest.mark.parametrize("hosts,label,why", CANDIDATE_KNOWN_WRONG)
def test_candidate_groups_known_wrong(hosts, label, why):
    assert label not in candidate_groups(hosts), why


def test_candidate_groups_min_size():
    hosts = ["10.4.7.1", "10.4.7.2", "10.4.8.1"]
    assert "subnet 10.4.7.0/24" in candidate_groups(hosts)
    assert "subnet 10.4.7.0/24" not in candidate_groups(hosts, min_size=3)
