"""The timeline: runs made of attempts (a restart is a new attempt, usually a new job id), failures
that end attempts, and the events each source writes about them. Pure: a ``random.Random`` in,
plain dicts out."""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from . import texts
from .fleet import NIC_PCI, Cluster, Fleet, Host, nodelist

DAY = 86400.0


@dataclass(eq=False)
class Run:
    name: str
    cluster: Cluster
    hosts: list[Host]
    step_s: float
    ckpt_every: int
    start: float
    versions: list[tuple[float, dict]]     # (from time, versions) — an upgrade appends an entry
    code_version: str
    script: str
    gbs: int
    precision: str
    bad_steps: dict[int, int] = field(default_factory=dict)  # data fault: step -> recurrences left
    data_cause: str | None = None
    attempts: list["Attempt"] = field(default_factory=list)
    job_base: int = 0
    seq0: int = 0

    def versions_at(self, t: float) -> dict:
        cur = self.versions[0][1]
        for since, v in self.versions:
            if since <= t:
                cur = v
        return dict(cur)


@dataclass(eq=False)  # identity: hosts and attempts are compared and looked up often
class Attempt:
    run: Run
    n: int                   # 1 for the first attempt of the run
    job_id: str
    start: float
    start_step: int
    hosts: list[Host]
    versions: dict
    attrs: dict
    job_num: int = 0
    end: float | None = None
    stopped: float | None = None
    reason: str = ""
    warmup: float = 0.0
    bug_plan: list[tuple[int, str]] = field(default_factory=list)  # single-bug firings (step, symptom)

    @property
    def world(self) -> int:
        return len(self.hosts) * 8

    def step_at(self, t: float) -> int:
        return self.start_step + max(0, int((t - self.start - self.warmup) / self.run.step_s))

    def time_of_step(self, s: int) -> float:
        return self.start + self.warmup + (s - self.start_step) * self.run.step_s

    def seq_at(self, t: float) -> int:
        # collectives issued so far: a few per step
        return self.run.seq0 + (self.step_at(t) - self.start_step) * 7 + 3

    def host_of(self, rank: int) -> Host:
        return self.hosts[rank // 8]


@dataclass
class Emitted:
    events: list[dict] = field(default_factory=list)
    cause_of: dict[str, str] = field(default_factory=dict)
    template_of: dict[str, str] = field(default_factory=dict)
    progress_ids: list[str] = field(default_factory=list)


def rfc3339(t: float) -> str:
    d = datetime.fromtimestamp(t, tz=timezone.utc)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}.{d.microsecond // 1000:03d}Z"


class Sim:
    """Holds the scenario being built. Family code configures it (``spec``) and schedules the
    structural causes; :meth:`run_timeline` plays everything out in time order."""

    def __init__(self, r: random.Random, fleet: Fleet, spec: dict, *, t0: float, horizon: float):
        self.r = r
        self.fleet = fleet
        self.spec = spec
        self.t0 = t0
        self.horizon = horizon
        self.out = Emitted()
        self.causes: dict[str, dict] = {}
        self.runs: list[Run] = []
        self.queue: list[tuple[float, int, str, dict]] = []
        self._qseq = 0
        self._ids: set[str] = set()
        self.running: dict[str, Attempt] = {}          # run name -> live attempt
        self.host_att: dict[str, Attempt] = {}         # host name -> live attempt
        self.pool: dict[str, list[Host]] = {c.name: [] for c in fleet.clusters}
        self.repair: list[tuple[float, Host]] = []
        self.drain: set[str] = set()
        self.undrained: set[str] = set()
        self.interruptions: dict[str, int] = {}
        self.interruptions_by_kind: dict[str, int] = {}
        self.bug_checks: list[Callable[[Attempt], None]] = []
        self.own_hazards: list[Callable[[Attempt], tuple[float, str, dict] | None]] = []
        self.on_end: list[Callable[[Attempt], None]] = []
        self._intervals: dict[str, list[Attempt]] | None = None
        self._clusters = {c.name: c for c in fleet.clusters}

    # ------------------------------------------------------------ causes and events
    def add_cause(self, cause_class: str, kind: str, scope: dict, **extra) -> str:
        cid = f"C{len(self.causes) + 1:03d}"
        self.causes[cid] = {"id": cid, "cause_class": cause_class, "kind": kind, "symptoms": [], "scope": scope, **extra}
        return cid

    def _new_id(self) -> str:
        while True:
            eid = f"ev-{self.r.getrandbits(60):015x}"
            if eid not in self._ids:
                self._ids.add(eid)
                return eid

    def gpu_app(self, local_rank: int) -> str:
        style = self.spec["gpu_app"]
        return {"index": str(local_rank), "GPU": f"GPU{local_rank}", "cuda": f"cuda:{local_rank}"}[style]

    def ctx(self, att: Attempt | None, host: Host, t: float, *, rank: int | None = None, source: str = "app", **kw) -> dict:
        lr = (rank % 8) if rank is not None else kw.pop("local_rank", 0)
        v = att.versions if att else {"driver": self.cluster_of(host).driver}
        c = {"t": t, "host": host.kernel_name if source == "kernel" else host.name, "ip": host.ip,
             "rank": rank if rank is not None else lr, "local_rank": lr, "pci": host.pcis[lr],
             "torch": v.get("torch", "2.4.1"), "nccl": v.get("nccl", "2.21.5"), "timeout_ms": self.spec["timeout_ms"],
             "kern_style": self.spec["kern_style"], "uptime": host.uptime + (t - self.t0),
             "world": att.world if att else 8, "script": att.run.script if att else "train.py",
             "step": att.step_at(t) if att else 0, "step_s": att.run.step_s if att else 5.0,
             "gbs": att.run.gbs if att else 2048, "job_num": att.job_num if att else 0,
             "nic": f"mlx5_{lr}", "nic_pci": NIC_PCI[lr], "nic_index": lr,
             "pyenv": self.spec.get("pyenv", "/opt/conda/lib/python3.10/site-packages")}
        c.update(kw)
        return c

    def cluster_of(self, host: Host) -> Cluster:
        return self._clusters[host.cluster]

    def emit(self, template: str, cause: str, t: float, *, att: Attempt | None, host: Host | None,
             rank: int | None = None, source: str = "app", kind: str | None = None, ctx: dict | None = None,
             host_field: str | None = None, attrs: dict | None = None) -> str:
        """One event as its source would send it. ``cause`` is a cause id, "noise" or "progress"."""
        r = self.r
        if t > self.t0 + self.horizon:
            t = self.t0 + self.horizon - r.uniform(1, 60)
        c = ctx if ctx is not None else self.ctx(att, host, t, rank=rank, source=source)
        c.setdefault("t", t)
        msg = texts.TEMPLATES[template](r, c)
        eid = self._new_id()
        ev: dict = {"event_id": eid, "job_id": att.job_id if att else self.spec["idle_job"], "message": msg,
                    "time": rfc3339(t)}
        if host is not None:
            cl = self.cluster_of(host)
            ev["cluster"] = cl.name
            if source == "kernel":
                ev["host"] = host.kernel_name
            elif source == "sched" and self.spec["scheduler"] == "slurm" and att is not None:
                ev["host"] = host_field or nodelist([h.name for h in att.hosts])
            else:
                ev["host"] = host.name
        lr = (rank % 8) if rank is not None else c.get("local_rank")
        if source == "app":
            if rank is not None:
                ev["rank"] = rank
                ev["gpu"] = self.gpu_app(lr)
            if att is not None:
                ev["step"] = c.get("step", att.step_at(t))
        elif source in ("kernel", "health") and c.get("gpu_related", True) and lr is not None and host is not None:
            ev["gpu"] = host.pcis[lr] if source == "kernel" else f"GPU{lr}"
        if att is not None:
            if source == "kernel":
                ev["versions"] = {"driver": att.versions["driver"]}
            else:
                ev["versions"] = dict(att.versions)
                if att.run.code_version:
                    ev["code_version"] = att.run.code_version
            a = dict(att.attrs)
            if attrs:
                a.update(attrs)
            ev["attributes"] = a
        elif host is not None:
            ev["versions"] = {"driver": self.cluster_of(host).driver}
            if attrs:
                ev["attributes"] = dict(attrs)
        if kind is None:
            kind = {"kernel": "hardware", "sched": "scheduler", "health": "health"}.get(source)
        if kind and (kind == "progress" or r.random() >= self.spec.get("kind_drop", 0.0)):
            ev["kind"] = kind
        if source != "app":
            ev.setdefault("attributes", {})["source"] = {"kernel": self.spec["kern_source"], "sched": self.spec["scheduler"],
                                                          "health": "dcgm"}.get(source, source)
        self.out.events.append(ev)
        if cause == "progress":
            self.out.progress_ids.append(eid)
        else:
            self.out.cause_of[eid] = cause
            self.out.template_of[eid] = template
            if cause != "noise":
                syms = self.causes[cause]["symptoms"]
                if template not in syms:
                    syms.append(template)
        return eid

    # ------------------------------------------------------------ runs and attempts
    def schedule(self, t: float, what: str, **payload) -> None:
        self._qseq += 1
        heapq.heappush(self.queue, (t, self._qseq, what, payload))

    def job_id_for(self, run: Run, n: int) -> tuple[str, dict, int]:
        conv = self.spec["restart"]
        r = self.r
        if conv == "requeue_new_id":
            num = run.job_base + (n - 1) * r.randint(40, 900) + r.randint(0, 30)
            run.job_base = num
            return str(num), {"job_name": run.name}, num
        if conv == "suffix_r":
            num = run.job_base + n
            return (run.name if n == 1 else f"{run.name}-r{n}"), {}, num
        if conv == "attempt_attr":
            num = run.job_base + n
            return f"{run.name}-{r.getrandbits(24):06x}", {"run": run.name, "attempt": n}, num
        # torchelastic: the launcher restarts in place (restart count) up to max_restarts, then the
        # job is resubmitted under a new id; the rendezvous (run) id names the run throughout.
        per = self.spec.get("max_restarts", 3) + 1
        sub = (n - 1) // per
        num = run.job_base + sub
        jid = f"{run.name}-{self.spec['job_suffixes'][run.name][sub % len(self.spec['job_suffixes'][run.name])]}"
        if sub >= len(self.spec["job_suffixes"][run.name]):
            jid += f"-{sub}"
        return jid, {"torchelastic_run_id": f"{run.name}-rdzv", "torchelastic_restart_count": (n - 1) % per}, num

    def start_attempt(self, run: Run, t: float, start_step: int) -> None:
        r = self.r
        # hosts back from repair rejoin the pool; drained hosts of this run are swapped for spares
        keep = []
        for when, h in self.repair:
            if when <= t:
                self.pool[h.cluster].append(h)
                self.drain.discard(h.name)
            else:
                keep.append((when, h))
        self.repair = keep
        for i, h in enumerate(run.hosts):
            if h.name in self.drain and self.pool[run.cluster.name]:
                run.hosts[i] = self.pool[run.cluster.name].pop(r.randrange(len(self.pool[run.cluster.name])))
        n = len(run.attempts) + 1
        jid, attrs, num = self.job_id_for(run, n)
        att = Attempt(run=run, n=n, job_id=jid, start=t, start_step=start_step, hosts=list(run.hosts),
                      versions=run.versions_at(t), attrs=attrs, job_num=num, warmup=r.uniform(120, 600))
        run.attempts.append(att)
        self.running[run.name] = att
        for h in att.hosts:
            self.host_att[h.name] = att
        for check in self.bug_checks:
            check(att)
        best = None
        for hz in self.own_hazards:
            got = hz(att)
            if got and (best is None or got[0] < best[0]):
                best = got
        if best:
            self.schedule(best[0], "own", att=att, own=best[1], **best[2])
        self._attempt_start_noise(att)

    def end_attempt(self, att: Attempt, t: float, reason: str, *, cause: str | None = None,
                    restart_delay: tuple[float, float] = (180, 2400), stopped: float | None = None) -> None:
        """``t`` is when the job is gone; ``stopped`` when training stopped making steps (a hang
        lasts until the watchdog fires, and no step is done meanwhile)."""
        if att.end is not None:
            return
        att.end = t
        att.stopped = min(t, stopped) if stopped is not None else t
        att.reason = reason
        if cause:
            c = self.causes[cause]
            self.interruptions[c["cause_class"]] = self.interruptions.get(c["cause_class"], 0) + 1
            self.interruptions_by_kind[c["kind"]] = self.interruptions_by_kind.get(c["kind"], 0) + 1
        self.running.pop(att.run.name, None)
        for h in att.hosts:
            if self.host_att.get(h.name) is att:
                del self.host_att[h.name]
        for fn in self.on_end:
            fn(att)
        # the last checkpoint completed before the failing step (a failure at a checkpoint step
        # replays that step)
        resume = ((att.step_at(att.stopped) - 1) // att.run.ckpt_every) * att.run.ckpt_every
        resume = max(resume, att.start_step)
        self.schedule(t + self.r.uniform(*restart_delay), "start", run=att.run, step=resume)

    def run_timeline(self) -> None:
        end = self.t0 + self.horizon
        while self.queue:
            t, _, what, p = heapq.heappop(self.queue)
            if t >= end:
                break
            if what == "start":
                if p["run"].name not in self.running:
                    self.start_attempt(p["run"], t, p["step"])
                continue
            if what == "own":
                att = p.pop("att")
                if att.end is None:
                    self.spec["own_handlers"][p.pop("own")](self, att, t, **p)
                continue
            self.spec["handlers"][what](self, t, **p)
        for att in list(self.running.values()):
            att.end = att.stopped = end
            att.reason = "scenario end"
            for fn in self.on_end:
                fn(att)

    def drain_host(self, host: Host, t: float, *, days: tuple[float, float] = (0.5, 3.0)) -> None:
        if host.name in self.undrained:
            return  # a part nobody has caught yet keeps failing where it is
        self.drain.add(host.name)
        self.repair.append((t + self.r.uniform(*days) * DAY, host))

    # ------------------------------------------------------------ shared shapes
    def storm(self, att: Attempt, t_hang: float, cause: str, *, skip_ranks: set[int] = frozenset(),
              desync: bool = False) -> float:
        """Every rank that did not fail first reports the collective timeout ``Timeout(ms)`` after
        the hang began; each host's launcher then writes its summary. Returns when it ended."""
        r = self.r
        tfire = t_hang + self.spec["timeout_ms"] / 1000.0 + r.uniform(0.0, 2.0)
        seq = att.seq_at(t_hang)
        numel = r.choice([466119168, 544997376, 9801523, 1, 268435456, 134217728])
        op = (r.choice(["ALLREDUCE", "_REDUCE_SCATTER_BASE", "_ALLGATHER_BASE", "BROADCAST"]), numel,
              numel if r.random() < 0.6 else numel // 8)
        step = att.step_at(t_hang)
        odd = r.randrange(att.world) if desync else -1
        tmpl = "nccl_watchdog_timeout" if r.random() < 0.75 else "nccl_watchdog_terminated"
        for rank in range(att.world):
            if rank in skip_ranks:
                continue
            h = att.host_of(rank)
            tt = tfire + r.uniform(0.0, 1.5)
            myop, myseq = op, seq
            if rank == odd:
                myop, myseq = ("_ALLGATHER_BASE", 513, 2052), seq + 2
            c = self.ctx(att, h, tt, rank=rank, seq=myseq, optype=myop, step=step)
            self.emit(tmpl, cause, tt, att=att, host=h, rank=rank, kind="hang", ctx=c)
        for h in att.hosts:
            if self.r.random() < self.spec.get("summary_share", 0.5):
                tt = tfire + r.uniform(2, 30)
                lr_first = [x for x in range(att.hosts.index(h) * 8, att.hosts.index(h) * 8 + 8)][:3]
                c = self.ctx(att, h, tt, rank=lr_first[0], exitcode=-6, failed_ranks=lr_first)
                self.emit("elastic_child_failed", cause, tt, att=att, host=h, rank=lr_first[0], kind="crash", ctx=c)
        return tfire + 30

    def crash_summary(self, att: Attempt, t: float, cause: str, rank: int, exitcode: int = 1) -> None:
        if self.r.random() < self.spec.get("summary_share", 0.5):
            h = att.host_of(rank)
            c = self.ctx(att, h, t, rank=rank, exitcode=exitcode, failed_ranks=[rank])
            self.emit("elastic_child_failed", cause, t, att=att, host=h, rank=rank, kind="crash", ctx=c)

    # ------------------------------------------------------------ noise and progress
    def _attempt_start_noise(self, att: Attempt) -> None:
        r = self.r
        t = att.start + r.uniform(20, 90)
        for _ in range(r.randint(2, 6)):
            rank = r.randrange(att.world)
            self.emit("nccl_info", "noise", t + r.uniform(0, 30), att=att, host=att.host_of(rank), rank=rank, kind="info")
        if att.run.precision == "fp16":
            for _ in range(r.randint(1, 4)):
                self.emit("ds_overflow", "noise", att.start + att.warmup + r.uniform(5, 120), att=att,
                          host=att.hosts[0], rank=0, kind="info")

    def progress_and_checkpoints(self, att: Attempt) -> None:
        """Clean exposure: rank 0's progress report every ``progress_every`` steps, checkpoint
        slow-save warnings now and then."""
        r = self.r
        every = self.spec["progress_every"]
        s = ((att.start_step // every) + 1) * every
        last = att.step_at(att.stopped or att.end)
        loss = r.uniform(2.0, 2.6)
        while s < last:
            t = att.time_of_step(s)
            c = self.ctx(att, att.hosts[0], t, rank=0, step=s, loss=loss - 1e-6 * s, tflops=r.uniform(380, 460))
            self.emit("progress", "progress", t, att=att, host=att.hosts[0], rank=0, kind="progress", ctx=c)
            s += every
        ck = ((att.start_step // att.run.ckpt_every) + 1) * att.run.ckpt_every
        while ck < last:
            if r.random() < self.spec.get("slow_ckpt_share", 0.15):
                t = att.time_of_step(ck) + r.uniform(301, 900)
                if t < (att.stopped or att.end):
                    self.emit("checkpoint_slow", "noise", t, att=att, host=att.hosts[0], rank=0, kind="info",
                              ctx=self.ctx(att, att.hosts[0], t, rank=0, step=ck))
            ck += att.run.ckpt_every

    def background_noise(self, n: int) -> None:
        """Benign lines spread over every host and the whole period (monitoring agents, health
        checks, NCCL INFO of live jobs)."""
        r = self.r
        hosts = self.fleet.hosts
        live = [a for run in self.runs for a in run.attempts if a.end and a.end > a.start + 600]
        for _ in range(n):
            k = r.random()
            if k < 0.45 and live:
                att = r.choice(live)
                t = r.uniform(att.start, att.end)
                rank = r.randrange(att.world)
                self.emit("nccl_info", "noise", t, att=att, host=att.host_of(rank), rank=rank, kind="info")
                continue
            h = r.choice(hosts)
            t = self.t0 + r.uniform(0, self.horizon)
            att = self._att_at(h, t)
            if k < 0.75:
                self.emit("mlx5_access_reg", "noise", t, att=att, host=h, source="kernel",
                          ctx=self.ctx(att, h, t, source="kernel", local_rank=r.randrange(8), gpu_related=False))
            elif k < 0.88:
                self.emit("dcgm_imex_false_positive", "noise", t, att=att, host=h, source="health",
                          ctx=self.ctx(att, h, t, source="health", local_rank=r.randrange(8)))
            else:
                self.emit("ib_hogged_cpu", "noise", t, att=att, host=h, source="kernel",
                          ctx=self.ctx(att, h, t, source="kernel", gpu_related=False))

    def _att_at(self, h: Host, t: float) -> Attempt | None:
        """The attempt holding ``h`` at ``t`` (kernel and agent lines are labelled with it)."""
        if self._intervals is None:
            self._intervals = {}
            for run in self.runs:
                for a in run.attempts:
                    for hh in a.hosts:
                        self._intervals.setdefault(hh.name, []).append(a)
        for a in self._intervals.get(h.name, ()):
            if a.start <= t < (a.end or 0):
                return a
        return None


def poisson_times(r: random.Random, t0: float, span: float, n: int) -> list[float]:
    return sorted(t0 + r.uniform(0, span) for _ in range(n))


def expo(r: random.Random, mean: float) -> float:
    return -mean * math.log(1.0 - r.random())
