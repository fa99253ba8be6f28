"""Names of hosts and GPUs: one spelling each, SLURM host lists, and shared components read from names.

Pure functions over strings; every one is linear in its input (no backtracking regular
expressions, host lists bounded before they are expanded). What they are for:

- ``canonical_host``: the same host arrives as ``gpu-r12-n07.cluster.example.com`` in kernel lines
  and ``gpu-r12-n07`` elsewhere; counting them as two hosts halves every per-host signal.
- ``expand_nodelist``: job-level lines (scheduler, launcher) carry a SLURM host list
  (``node[097-116,120]``) in the host field; the hosts are what the evidence is about.
- ``candidate_groups``: without a topology file the shared components a fault can sit in (a
  leaf switch, a rack) are only visible in the names: one IPv4 /24 per leaf, a rack token, a name
  prefix, aligned blocks of SLURM node numbers. Each group is a candidate to test like a switch.
- ``normalise_gpu`` / ``link_gpu_ids``: a GPU is an index (``3``, ``GPU3``) in one line and a PCI
  bus id (``0000:91:00.0``) in an Xid line; events that show both tie the two together.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable

__all__ = [
    "canonical_host",
    "expand_nodelist",
    "candidate_groups",
    "normalise_gpu",
    "link_gpu_ids",
    "BLOCK_SIZES",
    "NODELIST_LIMIT",
]

NODELIST_LIMIT = 4096
"""Default bound on the hosts one host list may expand to (a 4,096-node job is a large one; a
list that claims more is more likely garbage than a job, and expanding it costs memory)."""

BLOCK_SIZES = (8, 16, 32)
"""Aligned blocks of SLURM node numbers tried as shared components. Why these: an air-cooled
HGX/DGX rack holds 4-8 nodes and a leaf switch of a rail-optimised fat tree serves 16 or 32 nodes
(a DGX SuperPOD scalable unit is 32 nodes; 64-port leaves with half the ports down serve 32).
Sites number nodes in cabling order, so a rack or a leaf is usually an aligned block. Smaller
blocks (4) would double the number of groups to correct for while a single host is already
tested on its own; larger ones (64+) are close to "the whole cluster", which the cluster and
version rules already cover."""

_IPV4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")
_SEPARATORS = "-_."
_MAX_NAME = 253  # a DNS name's limit; a longer "host" is no name to read structure from (and keeps this linear)


def _ipv4(name: str) -> tuple[int, int, int, int] | None:
    m = _IPV4.fullmatch(name)
    if not m:
        return None
    parts = tuple(int(p) for p in m.groups())
    if any(p > 255 for p in parts):
        return None
    return parts  # type: ignore[return-value]


def canonical_host(name: str) -> str:
    """One spelling per host: stripped, lowercased, a fully qualified name cut to its first label.

    ``"GPU-R12-N07.cluster.example.com"`` and ``"gpu-r12-n07"`` both give ``"gpu-r12-n07"``. An
    IPv4 address stays whole (its first octet is no host name); so does anything with a ``:``
    (IPv6, ``host:port`` is the caller's to split) and a trailing dot is dropped (``"a.b."``).
    """
    s = name.strip().lower().rstrip(".")
    if not s or ":" in s or _ipv4(s) is not None:
        return s
    return s.split(".", 1)[0]


# --------------------------------------------------------------------------- SLURM host lists


def _split_top(s: str) -> list[str]:
    """Split at commas outside brackets; unbalanced brackets are an error."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"host list {s[:80]!r}: nested '[' at position {i}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"host list {s[:80]!r}: ']' without '[' at position {i}")
        elif ch == "," and depth == 0:
            out.append(s[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"host list {s[:80]!r}: '[' not closed")
    out.append(s[start:])
    return out


def _bracket_values(body: str, whole: str) -> list[str]:
    """``"097-116,120"`` -> the strings, zero padding kept (the width of the lower bound)."""
    vals: list[str] = []
    for part in body.split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise ValueError(f"host list {whole[:80]!r}: {part!r} is not a number or a range 'a-b'")
        if not dash:
            vals.append(lo)
            continue
        a, b = int(lo), int(hi)
        if b < a:
            raise ValueError(f"host list {whole[:80]!r}: range {part!r} runs backwards")
        vals.append((a, b, len(lo)))  # type: ignore[arg-type]  # expanded lazily, after the size check
    return vals


def expand_nodelist(s: str, *, limit: int = NODELIST_LIMIT) -> list[str]:
    """Expand a SLURM host list: ``"node[097-099,120],gpu-[01-02]-ib"`` ->
    ``["node097", "node098", "node099", "node120", "gpu-01-ib", "gpu-02-ib"]``.

    Several bracket groups in one name multiply (``r[1-2]n[1-2]`` -> 4 names); zero padding is the
    width of the range's lower bound, as SLURM writes it. A plain name is a one-element list, an
    empty string an empty one. More than ``limit`` names, a malformed range or unbalanced brackets
    raise ``ValueError`` (the size is computed before anything is expanded, so a list claiming a
    billion nodes costs nothing).
    """
    s = s.strip()
    if not s:
        return []
    groups: list[list[str | list]] = []
    total = 0
    for group in _split_top(s):
        group = group.strip()
        if not group:
            raise ValueError(f"host list {s[:80]!r}: empty name between commas")
        pieces: list[str | list] = []
        n = 1
        i = 0
        while i < len(group):
            j = group.find("[", i)
            if j < 0:
                pieces.append(group[i:])
                break
            if j > i:
                pieces.append(group[i:j])
            k = group.index("]", j)
            vals = _bracket_values(group[j + 1 : k], s)
            pieces.append(vals)
            n *= sum(1 if isinstance(v, str) else v[1] - v[0] + 1 for v in vals)
            if n > limit:
                break
            i = k + 1
        total += n
        if total > limit:
            raise ValueError(f"host list {s[:80]!r} names more than {limit} hosts")
        groups.append(pieces)
    out: list[str] = []
    for pieces in groups:
        names = [""]
        for p in pieces:
            if isinstance(p, str):
                names = [x + p for x in names]
                continue
            opts: list[str] = []
            for v in p:
                if isinstance(v, str):
                    opts.append(v)
                else:
                    a, b, w = v
                    opts.extend(f"{x:0{w}d}" for x in range(a, b + 1))
            names = [x + o for x in names for o in opts]
        out.extend(names)
    return out


# --------------------------------------------------------------------------- shared components


def _rack_token(tok: str) -> int | None:
    """``r12``, ``rack12``, ``rk12`` (also ``r12n07``: a rack token directly followed by the node
    part) -> 12; anything else None."""
    for pre in ("rack", "rk", "r"):
        if tok.startswith(pre):
            rest = tok[len(pre) :]
            k = 0
            while k < len(rest) and rest[k].isdigit():
                k += 1
            if k == 0:
                return None
            tail = rest[k:]
            if tail == "" or (tail[0].isalpha() and any(ch.isdigit() for ch in tail)):
                return int(rest[:k])
            return None
    return None


def _tokens(name: str) -> list[tuple[int, int]]:
    """(start, end) of the tokens between separators."""
    out, start = [], 0
    for i, ch in enumerate(name):
        if ch in _SEPARATORS:
            if i > start:
                out.append((start, i))
            start = i + 1
    if start < len(name):
        out.append((start, len(name)))
    return out


def _last_digits(name: str) -> tuple[str, str, str] | None:
    """(prefix, digits, suffix) around the last digit run, the suffix without digits."""
    end = len(name)
    while end > 0 and not name[end - 1].isdigit():
        end -= 1
    if end == 0:
        return None
    start = end
    while start > 0 and name[start - 1].isdigit():
        start -= 1
    return name[:start], name[start:end], name[end:]


def candidate_groups(hosts: Iterable[str], *, min_size: int = 2) -> dict[str, frozenset[str]]:
    """Shared components suggested by the names alone: label -> the hosts (as given) in it.

    Kinds, in this order, each sorted by label:

    - ``subnet 10.4.7.0/24``: IPv4 addresses by /24 (a leaf switch per /24 is the common layout);
    - ``rack gpu-r12``: a rack token (``r12``, ``rack12``, ``rk12``) with everything before it, so
      rack 12 of one row or cluster is not merged with rack 12 of another;
    - ``prefix gpu-r12-``: the name up to each separator followed by a part with digits, and the
      name without its last digit run (``c1-gpu``), for pods, rows and clusters;
    - ``range node001-node016``: aligned blocks (:data:`BLOCK_SIZES`) of the last number in names
      sharing prefix and suffix; blocks start at 0 when some name is numbered 0, else at 1.

    Hosts are read through :func:`canonical_host`, so spellings of one host fall in the same
    groups (and both are listed). A group holding every host or fewer than ``min_size`` says
    nothing and is left out; of groups with the same members only the first is kept, so the
    number of groups a caller corrects for is the number of distinct candidates.
    """
    given = sorted({h for h in hosts if h and h.strip()})
    canon = {h: canonical_host(h) for h in given}
    distinct = set(canon.values())
    subnets: dict[str, set[str]] = defaultdict(set)
    racks: dict[str, set[str]] = defaultdict(set)
    prefixes: dict[str, set[str]] = defaultdict(set)
    families: dict[tuple[str, str], list[tuple[str, int, int]]] = defaultdict(list)
    for h, c in canon.items():
        ip = _ipv4(c)
        if ip is not None:
            subnets[f"subnet {ip[0]}.{ip[1]}.{ip[2]}.0/24"].add(h)
            continue
        if ":" in c or len(c) > _MAX_NAME:
            continue
        for a, b in _tokens(c):
            tok = c[a:b]
            if _rack_token(tok) is not None:
                # the rack token up to its number, as written (r12 / rack12 / rk12; r12n07 -> r12)
                j = 0
                while not tok[j].isdigit():
                    j += 1
                while j < len(tok) and tok[j].isdigit():
                    j += 1
                racks[f"rack {c[:a]}{tok[:j]}"].add(h)
        last_digit = max((i for i, ch in enumerate(c) if ch.isdigit()), default=-1)
        for a, _b in _tokens(c):
            if 0 < a <= last_digit:  # the rest holds a number: a prefix before a numbered part
                prefixes[f"prefix {c[:a]}"].add(h)
        ld = _last_digits(c)
        if ld is not None:
            pre, digits, suf = ld
            if pre and pre[-1] not in _SEPARATORS and any(ch.isalpha() for ch in pre):
                prefixes[f"prefix {pre}"].add(h)
            families[(pre, suf)].append((h, int(digits), len(digits)))
    ranges: dict[str, set[str]] = {}
    for (pre, suf), members in sorted(families.items()):
        numbers = [n for _h, n, _w in members]
        base = 0 if min(numbers) == 0 else 1
        widths = {w for _h, _n, w in members}
        width = widths.pop() if len(widths) == 1 else 0
        for size in BLOCK_SIZES:
            blocks: dict[int, set[str]] = defaultdict(set)
            for h, n, _w in members:
                blocks[(n - base) // size].add(h)
            for bi, hs in sorted(blocks.items()):
                lo, hi = base + bi * size, base + bi * size + size - 1
                ranges[f"range {pre}{lo:0{width}d}{suf}-{pre}{hi:0{width}d}{suf}"] = hs
    out: dict[str, frozenset[str]] = {}
    seen: set[frozenset[str]] = set()
    for kind in (subnets, racks, prefixes, ranges):
        for label in sorted(kind, key=_natural):
            hosts = frozenset(kind[label])
            n = len({canon[h] for h in hosts})
            if n < min_size or n >= len(distinct) or hosts in seen:
                continue
            seen.add(hosts)
            out[label] = hosts
    return out


def _natural(label: str) -> tuple:
    """Sort key reading digit runs as numbers (rack r2 before rack r10)."""
    key: list = []
    run = ""
    for ch in label:
        if ch.isdigit():
            run += ch
            continue
        if run:
            key.append((1, int(run), run))
            run = ""
        key.append((0, ch, ""))
    if run:
        key.append((1, int(run), run))
    return tuple(key)


# --------------------------------------------------------------------------- GPUs


_GPU_INDEX = re.compile(r"(?:gpu|cuda|device|dev)?[\s#:_-]*(\d{1,3})", re.IGNORECASE)
_PCI = re.compile(r"(?:pci:)?(?:([0-9a-f]{4,8}):)?([0-9a-f]{2}):([0-9a-f]{2})(?:\.[0-7])?", re.IGNORECASE)
_UUID = re.compile(r"(?:gpu-|mig-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def normalise_gpu(gpu: str | None) -> str | None:
    """One spelling per GPU reference: an index as its number, a PCI bus id as
    ``pci:DDDD:BB:DD``, a UUID as given.

    ``"3"``, ``"03"``, ``"GPU3"``, ``"gpu 3"``, ``"GPU-3"``, ``"cuda:3"`` -> ``"3"``;
    ``"0000:91:00.0"``, ``"00000000:91:00.0"`` (nvidia-smi's 8-digit domain), ``"91:00.0"``,
    ``"PCI:0000:91:00"`` -> ``"pci:0000:91:00"`` (the function number is dropped: a GPU is one
    function). ``GPU-<uuid>`` and ``MIG-<uuid>`` are kept; anything else unrecognised is returned
    stripped rather than lost; ``None`` and blank give ``None``.
    """
    if gpu is None:
        return None
    s = str(gpu).strip()
    if not s:
        return None
    if _UUID.fullmatch(s):
        return s
    m = _GPU_INDEX.fullmatch(s)
    if m:
        return str(int(m.group(1)))
    m = _PCI.fullmatch(s)
    if m:
        domain = (m.group(1) or "0000").lower()[-4:].rjust(4, "0")
        return f"pci:{domain}:{m.group(2).lower()}:{m.group(3).lower()}"
    return s


def link_gpu_ids(observations: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
    """From ``(host, index, pci)`` seen together in one event, ``(canonical host, "pci:...") -> index``.

    Both ids are normalised first; a triple whose index is no index or whose PCI id is no PCI id
    is skipped. When one bus id was seen with different indices (containers renumber GPUs with
    ``CUDA_VISIBLE_DEVICES``) the most frequent wins; a tie is left out, as a guess would merge two
    GPUs.
    """
    seen: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for host, index, pci in observations:
        if not host:
            continue
        i, p = normalise_gpu(index), normalise_gpu(pci)
        if i is None or not i.isdigit() or p is None or not p.startswith("pci:"):
            continue
        seen[(canonical_host(host), p)][i] += 1
    out: dict[tuple[str, str], str] = {}
    for key in sorted(seen):
        (top, n), *rest = seen[key].most_common(2) + [(None, -1)]
        if rest and rest[0][1] == n:
            continue
        out[key] = top
    return out
