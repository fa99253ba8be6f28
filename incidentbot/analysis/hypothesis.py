"""A hypothesis under construction (components + events added by later rules) and its proposal."""

from __future__ import annotations

from collections import Counter, defaultdict

from .index import Component, Index, confidence_from
from .model import Proposal
from .versions import version_key


class Hyp:
    def __init__(
        self,
        eng: Index,
        comps: list[Component],
        storm_precursor: int | None = None,
        human: bool = False,
        incident: tuple[str, str] | None = None,
        shared: str | None = None,
        incident_device: str | None = None,
    ):
        self.eng = eng
        self.shared = shared  # a cluster whose jobs' storms came at once (storms.shared_storms)
        self.shared_windows: list[tuple[int, int]] = []  # (jobs hit, jobs running) per time it happened
        self.shared_after_storage = 0  # more storms of the cluster's jobs, each right after a storage line
        self.incident = incident  # (host, what its first line means): a host incident (incidents.py)
        # ... of this device of the host: a GPU, "nic" or "host" (another device's is another incident)
        self.incident_device = incident_device
        self.episodes = 0
        self.comps = comps
        self.events: list[int] = []
        self.sig_events: dict[int, list[int]] = defaultdict(list)
        self.sigs: set[int] = set()
        self.storm_precursor = storm_precursor
        self.human = human
        self.storm_lines: list[str] = []
        self.storm_p: list[float] = []
        self.lines_extra: list[str] = []
        for c in comps:
            self.add_events(c.sig, c.events, None)
            if c.kind == "host_incident" and self.incident is None:
                # found by incidents.find_anchored: its host, what its first line means, its failures
                self.incident = (c.scope["hosts"][0], c.cause_class)
                self.episodes = max(self.episodes, c.count)

    @property
    def storage(self) -> bool:
        """Whether a file system's own lines are among its texts (nfs, a storage category)."""
        eng = self.eng
        return any(
            "storage" in f"{eng.sigs[s].category} {eng.sig_class(s)}".lower() or "nfs" in eng.sig_title(s).lower()
            for s in self.sigs
            if s in eng.sigs
        )

    def add_events(self, s: int, ids: list[int], line: str | None) -> None:
        self.events.extend(ids)
        self.sig_events[s].extend(ids)
        self.sigs.add(s)
        if line:
            self.lines_extra.append(line)

    def remove_events(self, s: int, ids) -> None:
        """Take lines of text ``s`` out (from its components too): another hypothesis explains them."""
        gone = set(ids)
        self.events = [i for i in self.events if i not in gone]
        self.sig_events[s] = [i for i in self.sig_events[s] if i not in gone]
        for c in self.comps:
            if c.sig == s:
                c.events = [i for i in c.events if i not in gone]
        if not self.sig_events[s]:
            self.sigs.discard(s)

    def proposal(self) -> Proposal:
        eng = self.eng
        ev = eng.ev
        comps = self.comps
        kinds = Counter(c.kind for c in comps)
        sig_order = sorted(self.sigs, key=lambda s: (-len(self.sig_events[s]), s))
        n_sym = len(self.sigs)
        scope: dict[str, list[str]] = {}
        for c in comps:
            for k, vs in c.scope.items():
                cur = scope.setdefault(k, [])
                for v in vs:
                    if v not in cur:
                        cur.append(v)
        for k in scope:
            if k == "steps":
                scope[k] = sorted(scope[k], key=lambda x: (int(x) if x.isdigit() else -1, x))
                continue
            scope[k] = sorted(scope[k], key=lambda x: (version_key(x.split("=", 1)[-1]) if k == "versions" else x, x))
        ps = [c.p for c in comps] + self.storm_p
        p = min(ps) if ps else 1.0
        if comps:
            kind = max(kinds, key=lambda k: (sum(len(c.events) for c in comps if c.kind == k), k))
        elif self.incident is not None:
            kind = "host_incident"
        elif self.shared is not None:
            kind = "shared_component"
        elif self.storm_precursor is not None:
            kind = "storm"
        else:
            kind = "human_merge"
        classes: Counter[str] = Counter()
        for s in self.sigs:
            classes[eng.sig_class(s)] += len(self.sig_events[s])
        text_class = max((c for c in classes if c != "unknown"), key=lambda c: (classes[c], c), default="unknown")
        if kind == "localised_hardware":
            cause = "hardware"
            if text_class == "network" and "hardware" not in classes:
                cause = "network"
        elif kind == "switch":
            cause = "network"
        elif kind == "regression":
            cause = "software"  # a leak that ends in host OOM kills is still the code's
        elif kind == "data_step":
            cause = "data"
        elif kind == "host_incident" and self.incident is not None:  # (always set with that kind)
            cause = self.incident[1]
        elif kind == "shared_component":
            cause = "infrastructure"
        elif kind == "node_failure":
            cause = text_class if text_class != "unknown" else "infrastructure"
        else:
            cause = text_class
        agree = text_class in ("unknown", cause) or classes.get(cause, 0) > 0
        conf = confidence_from(p, agree=agree) if comps or self.storm_p else 0.5
        if kind == "shared_component":
            conf = eng.S.cover_confidence_shared  # place and time only, no test of chance
            agree = True
        if kind == "host_incident":
            assert self.incident is not None  # set with the kind (above, or from its components)
            # an episode's lead has no test of chance behind it, only the lines' own meaning and their
            # place and time; an anchored incident has its chance test (the components' p)
            conf = max(eng.S.incident_confidence, conf if comps or self.storm_p else 0.0)
            scope["hosts"] = [self.incident[0]]
            if self.incident_device not in (None, "nic", "host") and not comps:
                scope["gpus"] = [f"{self.incident[0]}/{self.incident_device}"]
        pre = self.storm_precursor
        if kind == "storm" and not comps:
            assert pre is not None  # kind "storm" without components is the precursor's
            # the precursor alone: what its text means, and how reliably it precedes the storms
            hosts = sorted({name for i in self.sig_events[pre] if (name := ev[i].host)})
            sws = sorted({eng.topo[h] for h in hosts if h in eng.topo})
            if hosts:
                scope["hosts"] = hosts
            if sws and len(sws) <= 2:
                scope["switches"] = sws
        symptoms = ", ".join(eng.sig_title(s) for s in sig_order[:5]) + ("…" if n_sym > 5 else "")
        if kind == "regression":
            labels: Counter[str] = Counter()
            for c in comps:
                if c.kind == "regression":
                    labels[c.label] += len(c.events)
            where = max(labels.items(), key=lambda kv: (kv[1], kv[0]))[0]
            title = f"Software regression {where}: {n_sym} symptom{'s' if n_sym > 1 else ''}" + (
                ", one cause" if n_sym > 1 else ""
            )
        elif kind == "localised_hardware":
            h = scope.get("hosts", ["?"])[0]
            g = scope.get("gpus", [])
            what = "Network fault at host" if cause == "network" else "Faulty GPU hardware on"
            title = (
                f"{what} {h}"
                + (f" ({g[0].split('/', 1)[1]})" if g else "")
                + f": {n_sym} symptom"
                + ("s" if n_sym > 1 else "")
            )
        elif kind == "switch":
            where = ", ".join(scope.get("switches", ["?"]))
            where = (
                f"{where} (the host names' group: one switch, rack or storage path)"
                if eng.topo_from_names
                else f"switch {where}"
            )
            title = f"Network fault under {where}: {n_sym} symptom" + ("s" if n_sym > 1 else "")
        elif kind == "data_step":
            steps = scope.get("steps", ["?"])
            at = (
                f"step {steps[0]}"
                if len(steps) == 1
                else f"steps {', '.join(steps[:-1][:5])}{', …' if len(steps) > 6 else ''} and {steps[-1]}"
            )
            title = (
                f"Bad training data at {at} of run "
                f"{', '.join(scope.get('runs') or scope.get('jobs', ['?']))}: fails there after every restart"
            )
        elif kind == "host_incident":
            what = {"network": "Network fault at host", "hardware": "Hardware fault on host"}.get(
                cause, "Failure on host"
            )
            n_ep = max(1, self.episodes)
            g = scope.get("gpus", [])
            title = (
                f"{what} {scope['hosts'][0]}"
                + (f" (GPU {g[0].split('/', 1)[1]})" if len(g) == 1 else "")
                + f": {n_ep} failure{'s' if n_ep > 1 else ''}, {n_sym} symptom"
                + ("s" if n_sym > 1 else "")
            )
        elif kind == "node_failure":
            first = next(c for c in comps if c.kind == "node_failure")
            title = (
                f"Node failure in job {', '.join(scope.get('jobs', ['?']))}: {eng.sig_title(first.sig)}, then its "
                f"peers lost it ({n_sym} symptom{'s' if n_sym > 1 else ''})"
            )
        elif kind == "storm":
            assert pre is not None  # as above
            others = [eng.sig_title(x) for x in sig_order if x != pre]
            title = f"{eng.sig_title(pre)}, then storms of {', '.join(others[:3])}" + (
                f" ({text_class})" if text_class != "unknown" else ""
            )
        elif kind == "shared_component":
            where = f"cluster {self.shared}" if self.shared else "the fleet"
            n_w = max(1, len(self.shared_windows))
            what = "storage" if self.storage else "shared component (switch, storage or scheduler)"
            if self.shared_windows:
                title = f"Storms across every job of {where} at once, {n_w} time{'s' if n_w > 1 else ''}: {what}"
            else:
                n = self.shared_after_storage
                title = f"Storage stalls on {where}: {n} storms, each right after the file system's lines"
            scope = {"clusters": [self.shared]} if self.shared else {}
        else:
            title = f"People's merge: {symptoms}"
        lines: list[str] = []
        for c in comps:
            lines.extend(c.evidence)
        if kind == "regression" and n_sym > 1:
            lines.insert(0, f"{n_sym} different symptoms share one onset and no location: " + symptoms)
            jobs_of = {s: {ev[i].job_id for i in self.sig_events[s]} for s in self.sigs}
            all_jobs = set().union(*jobs_of.values())
            multi = sum(1 for j in all_jobs if sum(1 for s in self.sigs if j in jobs_of[s]) >= min(2, n_sym))
            lines.insert(
                1,
                f"the same jobs show them: {multi} of {len(all_jobs)} affected jobs logged at least two "
                f"of the {n_sym} symptoms",
            )
        if kind == "host_incident" and not comps:  # (an anchored incident's components say it with their test)
            n_ep = max(1, self.episodes)
            jobs_n = len({ev[i].job_id for i in self.events})
            lines.insert(
                0,
                f"{n_ep} failure{'s' if n_ep > 1 else ''} in {jobs_n} job{'s' if jobs_n > 1 else ''}, each a few lines "
                f"within seconds ({symptoms}), the first line "
                + (f"of {cause} meaning " if cause in ("hardware", "network") else "")
                + f"on {scope['hosts'][0]}: the other lines, on this host or its peers, are consequences",
            )
        if kind == "shared_component":
            where = f"cluster {self.shared}" if self.shared else "the fleet"
            for a, b in self.shared_windows[:6]:
                lines.append(
                    f"storms hit {a} of the {b} jobs running on {where} within "
                    f"{eng.S.cluster_storm_span_s / 60:.0f} min: a component they share rather than any one job"
                )
            if self.shared_after_storage:
                n = self.shared_after_storage
                lines.append(
                    f"{n} more storm{'s' if n > 1 else ''} on {where} came right after a storage line in "
                    f"{'their jobs' if n > 1 else 'its job'}: the same file system stalling again"
                )
            others = [eng.sig_title(s) for s in sig_order if not any(i in eng.in_storm for i in self.sig_events[s])]
            if others:
                lines.append("lines just before the storms in those jobs: " + ", ".join(others[:4]))
        lines.extend(self.storm_lines)
        lines.extend(self.lines_extra)
        if classes:
            named = [f"{eng.sig_title(s)} means {eng.sig_class(s)}" for s in sig_order if eng.sig_class(s) != "unknown"]
            if named and kind in ("localised_hardware", "switch", "storm", "host_incident"):
                lines.append("known meaning: " + "; ".join(named[:4]))
        if not agree:
            lines.append(f"note: the texts themselves point to {text_class}, the pattern to {cause}")
        jobs = sorted({ev[i].job_id for i in self.events})
        if kind in ("data_step",) and "jobs" not in scope:
            scope["jobs"] = jobs
        key = ""
        if comps:
            k0 = min((c.key for c in comps), key=lambda k: (str(k[0]), str(k)))
            key = ":".join(str(x) if not isinstance(x, tuple) else "/".join(x) for x in k0)
        elif self.incident is not None:
            dev = self.incident_device
            key = f"incident:{self.incident[0]}" + (f"/{dev}" if dev is not None else "")
        elif self.shared is not None:
            key = f"shared:{self.shared}"
        elif self.storm_precursor is not None:
            key = f"storm:{self.storm_precursor}"
        else:
            key = "human:" + "/".join(str(s) for s in sorted(self.sigs))
        return Proposal(
            title=title,
            cause_class=cause,
            scope=scope,
            confidence=conf,
            evidence=lines,
            signature_ids=sorted(self.sigs),
            event_ids=sorted(ev[i].id for i in self.events),
            kind=kind,
            key=key,
        )


def give(hyps: list[Hyp], owner: dict[int, int], h: int, s: int, ids: list[int], line: str | None) -> None:
    """Lines ``ids`` of text ``s`` join hypothesis ``h``, which now explains them (``owner``)."""
    hyps[h].add_events(s, ids, line)
    for i in ids:
        owner[i] = h
