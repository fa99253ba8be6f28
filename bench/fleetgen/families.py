"""The scenario families, and the shape choices each draws per seed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .fleet import build_fleet
from .sim import DAY, Attempt, Run, Sim, expo, poisson_times

SIZES = {
    # target events, days, hosts per cluster, hosts per run, runs, background interruptions, leaf size
    "small": dict(target=5000, days=5, hosts=64, run_hosts=(8, 18), runs=4, bg=50, leaf=8,
                  leak_h=(4, 9), vbug_h=(14, 24), time_limit_h=[10, 12]),
    "medium": dict(target=20000, days=10, hosts=160, run_hosts=(20, 40), runs=6, bg=95, leaf=16,
                   leak_h=(8, 20), vbug_h=(40, 70), time_limit_h=[24]),
    "large": dict(target=70000, days=21, hosts=400, run_hosts=(32, 80), runs=9, bg=170, leaf=16,
                  leak_h=(12, 30), vbug_h=(60, 90), time_limit_h=[48]),
}
T0 = 1767225600.0  # 2026-01-01T00:00:00Z; each seed shifts it by up to a month


@dataclass
class Built:
    sim: Sim
    meta: dict
    single_bug: str | None
    runs_truth: dict[str, list[str]] = field(default_factory=dict)


def _runs(r: random.Random, sim: Sim, P: dict, *, versions_for, code_versions: list[str], t0: float) -> list[Run]:
    runs = []
    per_cluster = {c.name: 0 for c in sim.fleet.clusters}
    used = {c.name: 0 for c in sim.fleet.clusters}
    models = ["llama70b", "moe8x22b", "dense34b", "vlm13b", "code15b", "llama405b", "mix7b", "rl32b", "dit8b"]
    for i in range(P["runs"]):
        cl = sim.fleet.clusters[i % len(sim.fleet.clusters)]
        free = int(len(cl.hosts) * 0.88) - used[cl.name]
        n = min(r.randint(*P["run_hosts"]), free)
        if n < 2:
            continue
        # a block of hosts that usually straddles leaf switches, as schedulers allocate
        hosts = cl.hosts[used[cl.name]:used[cl.name] + n]
        used[cl.name] += n
        per_cluster[cl.name] += 1
        name = f"{models[i % len(models)]}-{r.choice(['pt', 'sft', 'ft', 'cpt'])}{r.randint(1, 99):02d}"
        start = t0 + (r.uniform(0, 0.08) if i < P["runs"] - 2 else r.uniform(0.15, 0.4)) * sim.horizon
        vers = versions_for(r, i, cl, start)
        runs.append(Run(name=name, cluster=cl, hosts=hosts, step_s=r.uniform(2.5, 9.0), ckpt_every=r.choice([100, 200, 250, 500]),
                        start=start, versions=vers, code_version=code_versions[i % len(code_versions)],
                        script=r.choice(["pretrain_gpt.py", "train.py", "scripts/train_fsdp.py", "megatron/train.py"]),
                        gbs=r.choice([1024, 2048, 4096]), precision=r.choice(["bf16", "bf16", "fp16"]),
                        job_base=r.randint(300000, 9000000), seq0=r.randint(0, 5000)))
    for cl in sim.fleet.clusters:
        sim.pool[cl.name] = cl.hosts[used[cl.name]:]
    return runs


def _bug_symptoms(r: random.Random, mild: list[str], fatal: list[str], must: str | None = None) -> list[str]:
    """3-5 unlike symptoms, at least one survivable and one fatal."""
    out = [r.choice(mild), must or r.choice(fatal)]
    rest = [x for x in mild + fatal if x not in out]
    out += r.sample(rest, r.randint(1, min(3, len(rest))))
    r.shuffle(out)
    return out


def _install_single_bug(sim: Sim, *, cause: str, cond, symptoms: list[str], fatal: set[str], every: tuple[int, int],
                        fatal_share: float = 0.08) -> None:
    """The rare many-symptom bug: fires every ``every`` steps on a random rank while ``cond`` holds;
    its fatal symptoms end the attempt, the others are logged and training goes on."""
    r = sim.r

    def plan(att: Attempt) -> None:
        if not cond(att):
            return
        s = att.start_step + r.randint(*every)
        limit = att.start_step + int(4 * DAY / att.run.step_s)
        mild = [x for x in symptoms if x not in fatal]
        bad = [x for x in symptoms if x in fatal]
        unseen = [x for x in symptoms if x not in seen]
        while s < limit:
            # most firings are survivable (a NaN or a spike, the step is skipped); some kill the job.
            # Symptoms not yet shown come first, so even a short scenario shows all of them.
            if unseen:
                sym = unseen.pop(0)
            else:
                sym = r.choice(bad) if (r.random() < fatal_share or not mild) and bad else r.choice(mild)
            att.bug_plan.append((s, sym))
            if sym in fatal:
                break
            s += r.randint(*every)

    def hazard(att: Attempt):
        if att.bug_plan and att.bug_plan[-1][1] in fatal:
            s, sym = att.bug_plan[-1]
            return att.time_of_step(s), "sbug", {"cause": cause, "symptom": sym, "step": s}
        return None

    def finish(att: Attempt) -> None:
        for s, sym in att.bug_plan:
            if sym in fatal:
                continue
            t = att.time_of_step(s)
            if t >= att.stopped:
                break
            rk = r.randrange(att.world)
            h = att.host_of(rk)
            sim.emit(sym, cause, t, att=att, host=h, rank=rk, kind="nan", ctx=sim.ctx(att, h, t, rank=rk, step=s))

    seen = sim.causes[cause]["symptoms"]  # what has been emitted so far (emit keeps it)
    sim.bug_checks.append(plan)
    sim.own_hazards.append(hazard)
    sim.on_end.append(finish)


def _install_data_fault(sim: Sim, run: Run, *, n_steps: int, recur: tuple[int, int]) -> str:
    r = sim.r
    cause = sim.add_cause("data", "bad_data_shard", {"runs": [run.name], "steps": []})
    run.data_cause = cause
    sim.spec.setdefault("bad_shards", {})[run.name] = {}
    # bad samples early enough that the run reaches them
    for _ in range(n_steps):
        step = r.randint(1200, max(1600, int(sim.horizon * 0.08 / run.step_s)))
        run.bad_steps[step] = r.randint(*recur)
        sim.spec["bad_shards"][run.name][step] = {
            "shard": f"/datasets/{r.choice(['web-v3', 'code-mix', 'books2'])}/shard-{r.randint(0, 4095):05d}.jsonl.zst",
            "sample": r.randint(10 ** 6, 9 * 10 ** 8), "style": r.randrange(2)}
        sim.causes[cause]["scope"]["steps"].append(step)

    def hazard(att: Attempt):
        if att.run is not run:
            return None
        for s in sorted(run.bad_steps):
            if run.bad_steps[s] > 0 and s > att.start_step:
                return att.time_of_step(s) + r.uniform(0, run.step_s), "data", {"step": s}
        return None

    sim.own_hazards.append(hazard)
    return cause


def _install_leak(sim: Sim, *, code_version: str, hours: tuple[float, float]) -> str:
    r = sim.r
    cause = sim.add_cause("software", "host_memory_leak", {"code_version": code_version})

    def hazard(att: Attempt):
        if att.run.code_version != code_version:
            return None
        return att.start + r.uniform(*hours) * 3600, "leak", {"cause": cause}

    sim.own_hazards.append(hazard)
    return cause


def _install_vbug(sim: Sim, *, kind: str, cond, scope: dict, symptoms: list[str], mean_h: float) -> str:
    r = sim.r
    cause = sim.add_cause("software", kind, scope)

    def hazard(att: Attempt):
        if not cond(att):
            return None
        return att.start + att.warmup + expo(r, mean_h * 3600), "vbug", {"cause": cause, "symptoms": symptoms}

    sim.own_hazards.append(hazard)
    return cause


def _busy_leaf(r: random.Random, sim: Sim, cl) -> str:
    """A leaf switch some run has hosts behind (a flap there interrupts jobs)."""
    used = {h.name for run in sim.runs for h in run.hosts}
    busy = [leaf for leaf, hosts in cl.leaves.items() if any(h.name in used for h in hosts)]
    return r.choice(busy or list(cl.leaves))


def _install_ima_twin(sim: Sim, r: random.Random):
    """The hardware twin of a software bug: a bad GPU on one host writing the same
    illegal-memory-access text, several times, because nobody drains it."""
    host = r.choice(sim.runs[0].hosts)
    sim.undrained.add(host.name)
    lr = r.randrange(8)
    twin = sim.add_cause("hardware", "gpu_bad_ima", {"hosts": [host.name], "gpu": host.pcis[lr], "gpu_index": lr,
                                                     "cluster": host.cluster})
    for t in poisson_times(r, sim.t0 + 0.05 * sim.horizon, 0.9 * sim.horizon, r.randint(4, 8)):
        sim.schedule(t, "repeat", cause=twin, host=host, lr=lr, kind="gpu_bad_ima")
    return host


def _common(sim: Sim, r: random.Random, P: dict, meta: dict) -> None:
    """Shapes every family has: the background mix, unexplained Xids, a data fault."""
    for t in poisson_times(r, sim.t0 + 0.02 * sim.horizon, 0.97 * sim.horizon, P["bg"]):
        sim.schedule(t, "bg")
    xids = r.sample([45, 154, 137, 145], r.randint(1, 2))
    for x in xids:
        cause = sim.add_cause("unknown", "unexplained_xid", {"xid": x})
        for t in poisson_times(r, sim.t0, sim.horizon, r.randint(6, 10 + P["bg"] // 2)):
            sim.schedule(t, "unknown_xid", cause=cause, xid=x)
    meta["unexplained_xids"] = xids
    data_run = r.choice(sim.runs[: max(1, len(sim.runs) - 2)])  # one that starts early enough to reach its bad steps
    meta["data_fault_run"] = data_run.name
    _install_data_fault(sim, data_run, n_steps=r.randint(1, 2 if P["runs"] <= 4 else 3), recur=(2, 4))


def _start_runs(sim: Sim) -> None:
    for run in sim.runs:
        sim.schedule(run.start, "start", run=run, step=0)


def _suffixes(r: random.Random, sim: Sim) -> dict[str, list[str]]:
    return {run.name: [f"{r.getrandbits(20):05x}" for _ in range(40)] for run in sim.runs}


# ------------------------------------------------------------------ family: ipfabric

def fam_ipfabric(r: random.Random, P: dict) -> Built:
    """Kubernetes fleet named by IP (one /24 per leaf), torchelastic restarts, two clusters whose
    drivers differ; the bad switch sits in the cluster with the odd driver; the many-symptom bug is
    active only under one torch x CUDA pair."""
    fleet = build_fleet(r, naming="ip", n_clusters=2, hosts_per_cluster=P["hosts"], leaf_size=P["leaf"],
                        cluster_names=["az1", "az2"], drivers=["550.127.05", "560.35.03"])
    timeout = r.choice([600000, 1800000])
    restart = r.choice(["torchelastic", "attempt_attr"])
    spec = dict(timeout_ms=timeout, restart=restart, gpu_app=r.choice(["index", "cuda"]), kern_style="talos",
                kern_source="node-problem-detector", scheduler="k8s", idle_job="node-agent", progress_every=r.choice([500, 1000]),
                summary_share=0.5, kind_drop=0.2, max_restarts=3, pyenv="/usr/local/lib/python3.11/dist-packages")
    t0 = T0 + r.randint(0, 30) * DAY
    sim = Sim(r, fleet, spec, t0=t0, horizon=P["days"] * DAY)
    bug_pair = ("2.5.1", "12.6")
    clean = [("2.5.1", "12.4"), ("2.4.1", "12.6"), ("2.4.1", "12.4")]
    combos = [bug_pair] + [clean[k % 3] for k in range(P["runs"] - 1)]
    r.shuffle(combos)
    mover = r.choice([i for i, c in enumerate(combos) if c != bug_pair])

    def nccl_for(torch):
        return "2.21.5" if torch == "2.5.1" else "2.20.5"

    def versions_for(r, i, cl, start):
        torch, cuda = combos[i % len(combos)]
        v = {"torch": torch, "cuda": cuda, "nccl": nccl_for(torch), "driver": cl.driver, "python": "3.11"}
        out = [(0.0, v)]
        if i == mover:  # a user moves this run onto the bad pair mid-way
            out.append((start + r.uniform(0.4, 0.7) * sim.horizon, {**v, "torch": bug_pair[0], "cuda": bug_pair[1],
                                                                     "nccl": nccl_for(bug_pair[0])}))
        elif r.random() < 0.3:  # or to another clean container
            t2, c2 = r.choice(clean)
            out.append((start + r.uniform(0.3, 0.7) * sim.horizon, {**v, "torch": t2, "cuda": c2, "nccl": nccl_for(t2)}))
        return out

    sim.runs = _runs(r, sim, P, versions_for=versions_for, code_versions=[f"{r.getrandbits(28):07x}" for _ in range(3)], t0=t0)
    spec["job_suffixes"] = _suffixes(r, sim)
    meta = {"family": "ipfabric", "naming": "ip", "restart": restart, "timeout_ms": timeout, "scheduler": "k8s",
            "gpu_app": spec["gpu_app"], "clusters": {c.name: {"driver": c.driver} for c in fleet.clusters}}
    # the illegal-memory-access text is always among them: a bad GPU writes it too
    syms = _bug_symptoms(r, ["nan_loss", "loss_spike"], ["device_side_assert", "cublas_exec_failed"],
                         must="cuda_illegal_memory_access")
    sb = sim.add_cause("software", "many_symptom_bug", {"versions": {"torch": bug_pair[0], "cuda": bug_pair[1]}}, single_bug=True)
    _install_single_bug(sim, cause=sb, cond=lambda a: (a.versions["torch"], a.versions["cuda"]) == bug_pair, symptoms=syms,
                        fatal={"device_side_assert", "cuda_illegal_memory_access", "cublas_exec_failed"},
                        every=(400, 1200))
    meta["single_bug"] = {"condition": {"torch": bug_pair[0], "cuda": bug_pair[1]}, "symptoms": syms}
    _common(sim, r, P, meta)
    host = _install_ima_twin(sim, r)
    meta["ima_twins"] = {"hardware_host": host.name, "software": {"torch": bug_pair[0], "cuda": bug_pair[1]}}
    # the confounder: cluster az2 runs the odd driver and also has the flapping switch
    bad = fleet.clusters[1]
    leaf = _busy_leaf(r, sim, bad)
    flap = sim.add_cause("network", "switch_flap", {"leaf": leaf, "cluster": bad.name, "hosts": [h.name for h in bad.leaves[leaf]]})
    for t in poisson_times(r, t0 + 0.1 * sim.horizon, 0.85 * sim.horizon, r.randint(3, 5)):
        sim.schedule(t, "flap", cause=flap, leaf=leaf, cluster=bad.name)
    meta["confounder"] = {"driver": bad.driver, "cluster": bad.name, "bad_leaf": leaf}
    ev = sim.add_cause("unknown", "pod_evicted", {"cluster": "*"})
    for t in poisson_times(r, t0, sim.horizon, r.randint(3, 6)):
        sim.schedule(t, "evict", cause=ev)
    _start_runs(sim)
    return Built(sim=sim, meta=meta, single_bug=sb)


# ------------------------------------------------------------------ family: slurm

def fam_slurm(r: random.Random, P: dict) -> Built:
    """SLURM fleet of numbered nodes: requeues get new numeric job ids, job-level lines carry a node
    list, a time limit ends long attempts, shared storage stalls hit every job of a cluster, an NCCL
    upgrade mid-scenario on one cluster brings a regression, a host-memory leak, and the many-symptom
    bug sits under one Transformer Engine release."""
    fleet = build_fleet(r, naming="slurm", n_clusters=2, hosts_per_cluster=P["hosts"], leaf_size=r.choice([16, 18, 20]),
                        cluster_names=["hpc1", "hpc2"], drivers=["550.90.07"])
    timeout = r.choice([600000, 1800000])
    spec = dict(timeout_ms=timeout, restart="requeue_new_id", gpu_app=r.choice(["GPU", "index"]), kern_style="dmesg",
                kern_source="dmesg", scheduler="slurm", idle_job="slurm-idle", progress_every=r.choice([500, 1000]),
                summary_share=0.35, kind_drop=0.4, fs=r.choice(["lustre", "nfs"]), nvlink5=False)
    t0 = T0 + r.randint(0, 30) * DAY
    sim = Sim(r, fleet, spec, t0=t0, horizon=P["days"] * DAY)
    upgrade_at = t0 + r.uniform(0.3, 0.5) * sim.horizon
    up_cluster = fleet.clusters[0].name
    te_run, te_mover = r.sample(range(P["runs"]), 2)

    def versions_for(r, i, cl, start):
        v = {"torch": r.choice(["2.3.1", "2.4.0"]), "cuda": "12.4", "nccl": "2.20.5", "driver": cl.driver,
             "transformer_engine": "1.12.0" if i == te_run else "1.11.0"}
        changes = []
        if cl.name == up_cluster:
            changes.append((upgrade_at, {"nccl": "2.21.5"}))
        if i == te_mover:
            changes.append((start + r.uniform(0.4, 0.7) * sim.horizon, {"transformer_engine": "1.12.0"}))
        out, cur = [(0.0, v)], v
        for when, delta in sorted(changes, key=lambda c: c[0]):
            cur = {**cur, **delta}
            out.append((when, cur))
        return out

    codes = [f"v{r.randint(1, 3)}.{r.randint(0, 9)}.{k}" for k in range(3)]
    sim.runs = _runs(r, sim, P, versions_for=versions_for, code_versions=codes, t0=t0)
    meta = {"family": "slurm", "naming": "slurm", "restart": "requeue_new_id", "timeout_ms": timeout, "scheduler": "slurm",
            "gpu_app": spec["gpu_app"], "upgrade": {"cluster": up_cluster, "at": upgrade_at, "nccl": ["2.20.5", "2.21.5"]}}
    syms = _bug_symptoms(r, ["nan_loss", "loss_spike"], ["device_side_assert", "nan_grad_norm_assert", "cublas_exec_failed"])
    sb = sim.add_cause("software", "many_symptom_bug", {"versions": {"transformer_engine": "1.12.0"}}, single_bug=True)
    _install_single_bug(sim, cause=sb, cond=lambda a: a.versions.get("transformer_engine") == "1.12.0", symptoms=syms,
                        fatal={"device_side_assert", "nan_grad_norm_assert", "cublas_exec_failed"}, every=(400, 1200))
    meta["single_bug"] = {"condition": {"transformer_engine": "1.12.0"}, "symptoms": syms}
    _common(sim, r, P, meta)
    reg = sim.add_cause("software", "nccl_upgrade_regression", {"versions": {"nccl": "2.21.5"}, "cluster": up_cluster,
                                                                  "since": upgrade_at})

    hits: dict[str, int] = {}

    def regress(att: Attempt):
        # the first attempt of a run on the new NCCL always meets it; later ones now and then,
        # and after three the operators pin the old transport setting
        if att.versions.get("nccl") != "2.21.5" or hits.get(att.run.name, 0) >= 3:
            return None
        if hits.get(att.run.name) is None or r.random() < 0.15:
            hits[att.run.name] = hits.get(att.run.name, 0) + 1
            return att.start + r.uniform(30, 600), "regress", {"cause": reg}
        hits.setdefault(att.run.name, 0)
        return None

    sim.own_hazards.append(regress)
    limit_h = r.choice(P["time_limit_h"])
    tl = sim.add_cause("infrastructure", "scheduler_time_limit", {"time_limit_h": limit_h})
    sim.own_hazards.append(lambda att: (att.start + limit_h * 3600 - r.uniform(0, 30), "time_limit", {"cause": tl}))
    meta["time_limit_h"] = limit_h
    leak_code = codes[1]
    _install_leak(sim, code_version=leak_code, hours=P["leak_h"])
    meta["leak_code_version"] = leak_code
    for ci, cl in enumerate(fleet.clusters):
        if ci == 1 or (P["runs"] > 4 and r.random() < 0.5):
            st = sim.add_cause("infrastructure", "storage_stall", {"cluster": cl.name, "storage": cl.storage})
            for t in poisson_times(r, t0 + 0.1 * sim.horizon, 0.85 * sim.horizon, r.randint(2, 3)):
                sim.schedule(t, "stall", cause=st, cluster=cl.name)
    unexplained = sim.add_cause("unknown", "scheduler_kill_unexplained", {"scheduler": "slurm"})
    for t in poisson_times(r, t0, sim.horizon, r.randint(2, 4)):
        sim.schedule(t, "evict", cause=unexplained)
    _start_runs(sim)
    return Built(sim=sim, meta=meta, single_bug=sb)


# ------------------------------------------------------------------ family: racks

def fam_racks(r: random.Random, P: dict) -> Built:
    """Hosts named by rack token (``gpu-r12-n07``), FQDNs in kernel lines, ``-r2`` or attempt
    restarts, a rack's top-of-rack switch flapping, a software hang with no precursor, an
    illegal-memory-access bug under one flash-attn release beside a bad GPU that writes the same
    text, a slow leak, and the many-symptom bug beginning at a torch upgrade mid-run."""
    n_cl = 1 if P["runs"] <= 4 else 2
    fleet = build_fleet(r, naming="rack", n_clusters=n_cl, hosts_per_cluster=P["hosts"] * (2 // n_cl),
                        leaf_size=r.choice([8, 12, 16]), cluster_names=["sjc", "ord"], drivers=["550.127.08"])
    timeout = r.choice([600000, 1800000])
    restart = r.choice(["suffix_r", "attempt_attr"])
    spec = dict(timeout_ms=timeout, restart=restart, gpu_app=r.choice(["index", "GPU"]), kern_style="journal",
                kern_source="journald", scheduler="slurm", idle_job="idle", progress_every=r.choice([400, 800]),
                summary_share=0.6, kind_drop=0.1, nvlink5=r.random() < 0.5)
    t0 = T0 + r.randint(0, 30) * DAY
    sim = Sim(r, fleet, spec, t0=t0, horizon=P["days"] * DAY)
    fa_bad = "2.7.0.post2"
    movers = set(r.sample(range(P["runs"] - 2), max(2, P["runs"] // 3)))  # among the runs that start early

    def versions_for(r, i, cl, start):
        v = {"torch": "2.5.1", "cuda": r.choice(["12.4", "12.6"]), "nccl": "2.21.5", "driver": cl.driver,
             "flash_attn": fa_bad if i % 2 == 1 else "2.6.3"}
        out = [(0.0, v)]
        if i in movers:  # a few runs move to torch 2.6.0 mid-run: the bug's onset
            out.append((start + r.uniform(0.4, 0.7) * sim.horizon, {**v, "torch": "2.6.0", "nccl": "2.21.5"}))
        return out

    codes = [f"{r.getrandbits(40):010x}" for _ in range(3)]
    sim.runs = _runs(r, sim, P, versions_for=versions_for, code_versions=codes, t0=t0)
    meta = {"family": "racks", "naming": "rack+fqdn", "restart": restart, "timeout_ms": timeout, "scheduler": "slurm",
            "gpu_app": spec["gpu_app"], "torch_upgrade": {run.name: run.versions[1][0] for run in sim.runs if len(run.versions) > 1}}
    syms = _bug_symptoms(r, ["nan_loss", "loss_spike"], ["device_side_assert", "nan_grad_norm_assert", "cublas_exec_failed"])
    sb = sim.add_cause("software", "many_symptom_bug", {"versions": {"torch": "2.6.0"}}, single_bug=True)
    _install_single_bug(sim, cause=sb, cond=lambda a: a.versions["torch"] == "2.6.0", symptoms=syms,
                        fatal={"device_side_assert", "nan_grad_norm_assert", "cublas_exec_failed"}, every=(400, 1200))
    meta["single_bug"] = {"condition": {"torch": "2.6.0"}, "onset": "torch upgrade", "symptoms": syms}
    _common(sim, r, P, meta)
    _install_vbug(sim, kind="version_kernel_bug", cond=lambda a: a.versions.get("flash_attn") == fa_bad,
                  scope={"versions": {"flash_attn": fa_bad}}, symptoms=["cuda_illegal_memory_access"], mean_h=r.uniform(*P["vbug_h"]))
    host = _install_ima_twin(sim, r)
    meta["ima_twins"] = {"hardware_host": host.name, "software": {"flash_attn": fa_bad}}
    leak_code = codes[2]
    _install_leak(sim, code_version=leak_code, hours=P["leak_h"])
    meta["leak_code_version"] = leak_code
    hang_code = codes[0]
    hang = sim.add_cause("software", "eval_hang", {"code_version": hang_code})
    for t in poisson_times(r, t0 + 0.1 * sim.horizon, 0.85 * sim.horizon, r.randint(2, 4)):
        sim.schedule(t, "hang", cause=hang, code_version=hang_code)
    cl = fleet.clusters[-1]
    leaf = _busy_leaf(r, sim, cl)
    flap = sim.add_cause("network", "switch_flap", {"leaf": leaf, "cluster": cl.name, "hosts": [h.name for h in cl.leaves[leaf]]})
    for t in poisson_times(r, t0 + 0.1 * sim.horizon, 0.85 * sim.horizon, r.randint(2, 4)):
        sim.schedule(t, "flap", cause=flap, leaf=leaf, cluster=cl.name)
    meta["bad_leaf"] = leaf
    unexplained = sim.add_cause("unknown", "scheduler_kill_unexplained", {"scheduler": "slurm"})
    for t in poisson_times(r, t0, sim.horizon, r.randint(2, 4)):
        sim.schedule(t, "evict", cause=unexplained)
    _start_runs(sim)
    return Built(sim=sim, meta=meta, single_bug=sb)


FAMILIES = {"ipfabric": fam_ipfabric, "slurm": fam_slurm, "racks": fam_racks}
