"""The fleet: clusters of leaf switches of hosts of 8 GPUs, spelled the way each naming convention
spells them, plus SLURM node-list compression."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

# PCI bus ids of the 8 GPUs of common 8-GPU boards (HGX H100, DGX A100, a PCIe-switch board).
BOARDS = {
    "hgx-h100": ["0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0",
                 "0000:9a:00.0", "0000:ab:00.0", "0000:ba:00.0", "0000:db:00.0"],
    "dgx-a100": ["0000:07:00.0", "0000:0f:00.0", "0000:47:00.0", "0000:4e:00.0",
                 "0000:87:00.0", "0000:90:00.0", "0000:b7:00.0", "0000:bd:00.0"],
    "pcie-sw": ["0000:1b:00.0", "0000:43:00.0", "0000:52:00.0", "0000:61:00.0",
                "0000:9d:00.0", "0000:c3:00.0", "0000:d1:00.0", "0000:df:00.0"],
}
NIC_PCI = ["0000:1a:00.0", "0000:3c:00.0", "0000:4d:00.0", "0000:5e:00.0",
           "0000:9c:00.0", "0000:bc:00.0", "0000:cc:00.0", "0000:dc:00.0"]


@dataclass(eq=False)  # identity: hosts and attempts are compared and looked up often
class Host:
    name: str            # as the training job and the scheduler spell it
    kernel_name: str     # as kernel/agent lines spell it (an FQDN in some fleets)
    ip: str
    cluster: str
    leaf: str
    pcis: list[str]
    index: int           # position in its cluster, for node-list compression
    uptime: float = 0.0  # dmesg seconds since boot at the scenario's start


@dataclass(eq=False)
class Cluster:
    name: str
    hosts: list[Host] = field(default_factory=list)
    leaves: dict[str, list[Host]] = field(default_factory=dict)
    driver: str = ""
    board: str = "hgx-h100"
    storage: str = ""
    fsname: str = ""


@dataclass(eq=False)
class Fleet:
    clusters: list[Cluster]
    naming: str
    domain: str

    @property
    def hosts(self) -> list[Host]:
        return [h for c in self.clusters for h in c.hosts]

    def topology(self) -> dict[str, str]:
        topo: dict[str, str] = {}
        for h in self.hosts:
            topo[h.name] = h.leaf
            topo[h.kernel_name] = h.leaf
        return topo

    def aliases(self) -> dict[str, str]:
        return {h.kernel_name: h.name for h in self.hosts if h.kernel_name != h.name}


def build_fleet(r: random.Random, *, naming: str, n_clusters: int, hosts_per_cluster: int,
                leaf_size: int, cluster_names: list[str], drivers: list[str]) -> Fleet:
    domain = r.choice(["corp.example.com", "hpc.example.net", "ml.example.org"])
    clusters = []
    slurm_prefixes = r.sample(["node", "gn", "gpu", "hgx", "dgx"], k=n_clusters)
    for ci in range(n_clusters):
        cl = Cluster(name=cluster_names[ci], driver=drivers[ci % len(drivers)],
                     board=r.choice(list(BOARDS)), storage=f"10.{200 + ci}.0.{r.randint(2, 250)}",
                     fsname=r.choice(["scratch", "lfs01", "ckpt"]))
        n_leaves = max(2, hosts_per_cluster // leaf_size)
        rack_base = r.randint(1, 40)
        idx = 0
        for li in range(n_leaves):
            leaf = f"{cl.name}-leaf{li + 1:02d}"
            members = []
            for n in range(leaf_size):
                idx += 1
                ip = f"10.{10 + ci}.{r.randint(0, 3) * 64 + li if naming != 'ip' else 32 + li}.{11 + n}"
                if naming == "ip":
                    name = kernel = ip
                elif naming == "rack":
                    # one leaf switch serves one rack (top-of-rack), named by a rack token
                    name = f"gpu-r{rack_base + li:02d}-n{n + 1:02d}" if n_clusters == 1 else \
                        f"{cl.name}-r{rack_base + li:02d}-n{n + 1:02d}"
                    kernel = f"{name}.{cl.name}.{domain}"
                else:
                    name = kernel = f"{slurm_prefixes[ci]}{idx:03d}"
                h = Host(name=name, kernel_name=kernel, ip=ip, cluster=cl.name, leaf=leaf,
                         pcis=list(BOARDS[cl.board]), index=idx, uptime=r.uniform(2e4, 4e6))
                members.append(h)
                cl.hosts.append(h)
            cl.leaves[leaf] = members
        clusters.append(cl)
    return Fleet(clusters=clusters, naming=naming, domain=domain)


_NUM_TAIL = re.compile(r"^(.*?)(\d+)$")


def nodelist(names: list[str]) -> str:
    """SLURM's compressed host list: ``node[097-116,120]``, ``gpu-r12-n[01-08],gpu-r13-n[01-04]``."""
    groups: dict[tuple[str, int], list[int]] = {}
    plain: list[str] = []
    for n in sorted(names):
        m = _NUM_TAIL.match(n)
        if not m:
            plain.append(n)
            continue
        groups.setdefault((m.group(1), len(m.group(2))), []).append(int(m.group(2)))
    parts = []
    for (prefix, width), nums in groups.items():
        nums = sorted(set(nums))
        if len(nums) == 1:
            parts.append(f"{prefix}{nums[0]:0{width}d}")
            continue
        ranges, start, prev = [], nums[0], nums[0]
        for x in nums[1:] + [None]:
            if x is not None and x == prev + 1:
                prev = x
                continue
            ranges.append(f"{start:0{width}d}" if start == prev else f"{start:0{width}d}-{prev:0{width}d}")
            if x is not None:
                start = prev = x
        parts.append(f"{prefix}[{','.join(ranges)}]")
    return ",".join(parts + plain)
