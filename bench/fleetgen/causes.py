"""What each cause writes, and when. Handlers are plain functions over a :class:`Sim`; the tables
at the bottom say which handler a queued item or an attempt's own hazard calls."""

from __future__ import annotations

from .fleet import Host
from .sim import DAY, Attempt, Sim

# The 419 unexpected interruptions of Llama 3 405B (taxonomy.md, section 1), as cause kinds.
# "Faulty GPU" (148) is split over its three usual faces. "Software bug" and "Dependency" are left
# out here: every family brings its own software causes (version bugs, leaks, hangs, regressions).
HARDWARE_MIX: list[tuple[str, str, int]] = [
    ("gpu_fell_off_bus", "hardware", 70),
    ("gpu_nvlink", "hardware", 40),
    ("gpu_bad_ima", "hardware", 38),
    ("gpu_hbm_ecc", "hardware", 72),
    ("ib_cable", "network", 35),
    ("host_maintenance", "infrastructure", 32),
    ("gpu_sram_ecc", "hardware", 19),
    ("gpu_gsp", "hardware", 17),
    ("nic_fault", "network", 7),
    ("collective_hang_unknown", "unknown", 7),
    ("sdc", "hardware", 6),
    ("gpu_thermal", "hardware", 6),
    ("host_ssd", "hardware", 3),
    ("host_psu", "hardware", 3),
    ("host_board", "hardware", 4),
    ("host_memory", "hardware", 4),
]
# chance that the same part fails again later (a "lemon"): the GPU is not caught at the first failure
LEMON = {"gpu_bad_ima": 0.5, "gpu_hbm_ecc": 0.35, "sdc": 0.7, "gpu_nvlink": 0.3, "ib_cable": 0.4,
         "gpu_fell_off_bus": 0.2, "gpu_gsp": 0.3}


def _peers(sim: Sim, att: Attempt, host: Host, n: int) -> list[int]:
    others = [rk for rk in range(att.world) if att.host_of(rk) is not host]
    return sim.r.sample(others, min(n, len(others)))


def _sched_line(sim: Sim, att: Attempt, host: Host, t: float, cause: str, slurm_tmpl: str, k8s_tmpl: str) -> None:
    if sim.spec["scheduler"] == "slurm":
        c = sim.ctx(att, host, t, node=host.name, nodelist=_nl(att))
        sim.emit(slurm_tmpl, cause, t, att=att, host=host, source="sched", ctx=c)
    else:
        c = sim.ctx(att, host, t, node=host.name, pod=f"{att.job_id}-worker-{att.hosts.index(host)}")
        sim.emit(k8s_tmpl, cause, t, att=att, host=host, source="sched", ctx=c)


def _nl(att: Attempt) -> str:
    from .fleet import nodelist
    return nodelist([h.name for h in att.hosts])


def hardware_failure(sim: Sim, att: Attempt, host: Host, lr: int, t: float, cause: str, kind: str) -> None:
    """One interruption by a hardware (or host/network) cause on ``host``'s GPU ``lr``."""
    r = sim.r
    rank = att.hosts.index(host) * 8 + lr
    kern = lambda tmpl, tt, **kw: sim.emit(tmpl, cause, tt, att=att, host=host, source="kernel",  # noqa: E731
                                           ctx=sim.ctx(att, host, tt, source="kernel", local_rank=lr, **kw))
    app = lambda tmpl, tt, rk=rank, kd="crash", **kw: sim.emit(  # noqa: E731
        tmpl, cause, tt, att=att, host=att.host_of(rk), rank=rk, kind=kd, ctx=sim.ctx(att, att.host_of(rk), tt, rank=rk, **kw))
    health = lambda tmpl, tt: sim.emit(tmpl, cause, tt, att=att, host=host, source="health",  # noqa: E731
                                       ctx=sim.ctx(att, host, tt, source="health", local_rank=lr))
    end, drain = t + 60, True
    if kind in ("gpu_fell_off_bus", "gpu_thermal", "host_board"):
        if kind == "gpu_thermal":
            for k in range(r.randint(1, 3)):
                health("dcgm_thermal", t - r.uniform(600, 6 * 3600))
        if kind == "host_board":
            kern("pcie_aer", t - r.uniform(0.01, 2), gpu_related=False, port=f"0000:{r.choice(['00', '16', '5d', '97'])}:0{r.randint(1, 3)}.0")
        kern("xid79_fell_off_bus", t)
        if r.random() < 0.6:
            app("cuda_unknown_error", t + r.uniform(0.2, 5))
        if sim.spec["scheduler"] == "slurm" and r.random() < 0.7:
            sim.emit("nvml_gpu_lost", cause, t + r.uniform(5, 120), att=att, host=host, source="sched",
                     ctx=sim.ctx(att, host, t, local_rank=lr), host_field=host.name)
        if r.random() < 0.5:
            health("smi_device_handle", t + r.uniform(30, 900))
        end = sim.storm(att, t, cause, skip_ranks={rank})
    elif kind == "gpu_nvlink":
        kern("xid149_nvlink5" if sim.spec.get("nvlink5") else "xid74_nvlink", t)
        for rk in {rank, att.hosts.index(host) * 8 + r.randrange(8)}:
            app("cuda_nvlink_uncorrectable", t + r.uniform(0.1, 3), rk)
        if r.random() < 0.6:
            end = sim.storm(att, t, cause, skip_ranks={rank})
        else:
            sim.crash_summary(att, t + 10, cause, rank)
    elif kind == "gpu_bad_ima":
        if r.random() < 0.7:
            kern("xid13_sm_exception", t)
        app("cuda_illegal_memory_access", t + r.uniform(0.05, 2))
        if r.random() < 0.25:
            end = sim.storm(att, t, cause, skip_ranks={rank})
        else:
            sim.crash_summary(att, t + 8, cause, rank)
        drain = False  # the usual story: the bad GPU is not caught until it has failed several times
    elif kind in ("gpu_hbm_ecc", "gpu_sram_ecc"):
        kern("xid48_dbe" if kind == "gpu_hbm_ecc" and r.random() < 0.6 else "xid94_contained", t)
        app("cuda_ecc_uncorrectable", t + r.uniform(0.05, 2))
        if kind == "gpu_hbm_ecc":
            if r.random() < 0.4:
                kern("xid63_row_remap", t + r.uniform(1, 30))
            if r.random() < 0.5:
                health("dcgm_row_remap_pending", t + r.uniform(600, 7200))
        else:
            health("smi_sram_uncorrectable", t + r.uniform(300, 3600))
        if r.random() < 0.5:
            end = sim.storm(att, t, cause, skip_ranks={rank})
        else:
            sim.crash_summary(att, t + 8, cause, rank)
    elif kind == "gpu_gsp":
        for k in range(r.randint(1, 3)):
            kern("xid119_gsp", t + k * 6)
        if r.random() < 0.5:
            app("cuda_unknown_error", t + r.uniform(1, 30))
        end = sim.storm(att, t, cause, skip_ranks={rank})
    elif kind == "sdc":
        app("sdc_rerun_not_reproducible", t, kd="nan")
        sim.crash_summary(att, t + 20, cause, rank)
        drain = False
    elif kind in ("ib_cable", "nic_fault"):
        kern("mlx5_cable_error" if kind == "ib_cable" else "mlx5_link_flap", t - r.uniform(0.5, 20), gpu_related=False)
        for k in r.sample(range(8), r.randint(1, 3)):
            app("ib_completion_error", t + r.uniform(0, 3), att.hosts.index(host) * 8 + k, kd="crash", peer_ip=r.choice(att.hosts).ip)
        for rk in _peers(sim, att, host, r.randint(2, 8)):
            app("nccl_remote_error", t + r.uniform(1, 20), rk, peer_ip=host.ip)
    elif kind == "host_maintenance":
        _sched_line(sim, att, host, t, cause, "slurm_node_fail", "k8s_node_notready")
        for rk in _peers(sim, att, host, r.randint(2, 6)):
            app("nccl_warn_connect", t + r.uniform(1, 60), rk, peer_ip=host.ip)
    elif kind == "host_psu":
        _sched_line(sim, att, host, t + r.uniform(20, 90), cause, "slurm_node_fail", "k8s_node_notready")
        end = sim.storm(att, t, cause, skip_ranks=set(range(att.hosts.index(host) * 8, att.hosts.index(host) * 8 + 8)))
    elif kind == "host_ssd":
        kern("nvme_io_error", t - r.uniform(1, 60), gpu_related=False, nvme=r.randint(0, 7))
        app("checkpoint_write_failed", t, att.hosts.index(host) * 8)
        sim.crash_summary(att, t + 15, cause, att.hosts.index(host) * 8)
    elif kind == "host_memory":
        kern("edac_ue", t - r.uniform(0.1, 5), gpu_related=False)
        sim.crash_summary(att, t + 5, cause, rank, exitcode=-7)
    elif kind == "collective_hang_unknown":
        end = sim.storm(att, t, cause, desync=True)
        drain = False
    sim.end_attempt(att, end, kind, cause=cause, stopped=t)
    if drain and r.random() < 0.7:
        sim.drain_host(host, t)


def _pick_live(sim: Sim) -> Attempt | None:
    live = [a for a in sim.running.values() if a.end is None]
    if not live:
        return None
    return sim.r.choices(live, weights=[a.world for a in live])[0]


def on_bg(sim: Sim, t: float) -> None:
    """A background interruption drawn from the published mix."""
    r = sim.r
    att = _pick_live(sim)
    if att is None:
        return
    kind, cls, _ = r.choices(HARDWARE_MIX, weights=[w for *_, w in HARDWARE_MIX])[0]
    host = r.choice(att.hosts)
    lr = r.randrange(8)
    gpu_scoped = kind.startswith("gpu_") or kind == "sdc"
    scope = {"hosts": [host.name], "cluster": host.cluster}
    if gpu_scoped:
        scope["gpu"] = host.pcis[lr]
        scope["gpu_index"] = lr
    if kind == "collective_hang_unknown":
        scope = {"jobs": [att.job_id]}
    cause = sim.add_cause(cls, kind, scope)
    hardware_failure(sim, att, host, lr, t, cause, kind)
    if r.random() < LEMON.get(kind, 0.0):
        for k in range(r.randint(2, 4)):
            sim.schedule(t + r.uniform(0.3, 4.0) * DAY * (k + 1) / 2, "repeat", cause=cause, host=host, lr=lr, kind=kind)


def on_repeat(sim: Sim, t: float, *, cause: str, host: Host, lr: int, kind: str, tries: int = 3) -> None:
    """A lemon fails again, if it is in use; between attempts it waits for the next one."""
    att = sim.host_att.get(host.name)
    if att is None or att.end is not None:
        if tries > 0:
            sim.schedule(t + sim.r.uniform(1800, 5 * 3600), "repeat", cause=cause, host=host, lr=lr, kind=kind, tries=tries - 1)
        return
    sc = sim.causes[cause]["scope"]
    if host.name not in sc.get("hosts", []):
        return
    hardware_failure(sim, att, host, lr, t, cause, kind)


def on_flap(sim: Sim, t: float, *, cause: str, leaf: str, cluster: str) -> None:
    """A leaf switch flaps: link-state lines on its hosts, IB errors on the ranks there, then every
    job with a rank behind the switch stalls until its watchdog fires."""
    r = sim.r
    cl = next(c for c in sim.fleet.clusters if c.name == cluster)
    hosts = cl.leaves[leaf]
    hit: dict[str, Attempt] = {}
    for h in hosts:
        att = sim.host_att.get(h.name)
        for nic in r.sample(range(8), r.randint(1, 3)):
            tt = t + r.uniform(0, 4)
            sim.emit("mlx5_link_flap", cause, tt, att=att, host=h, source="kernel",
                     ctx=sim.ctx(att, h, tt, source="kernel", local_rank=nic, gpu_related=False))
        if att is not None and att.end is None:
            hit[att.run.name] = att
            for k in r.sample(range(8), r.randint(1, 4)):
                rk = att.hosts.index(h) * 8 + k
                tt = t + r.uniform(1, 8)
                sim.emit("ib_completion_error", cause, tt, att=att, host=h, rank=rk, kind="crash",
                         ctx=sim.ctx(att, h, tt, rank=rk, peer_ip=r.choice(hosts).ip))
    for att in hit.values():
        first = {att.hosts.index(h) * 8 + k for h in att.hosts if h in hosts for k in range(8)}
        end = sim.storm(att, t, cause, skip_ranks=first)
        sim.end_attempt(att, end, "switch flap", cause=cause, stopped=t)


def on_stall(sim: Sim, t: float, *, cause: str, cluster: str) -> None:
    """Shared storage stalls: every job of the cluster fails its checkpoint or barrier at once, then
    storms; the file-system client complains on the hosts."""
    r = sim.r
    cl = next(c for c in sim.fleet.clusters if c.name == cluster)
    for h in r.sample(cl.hosts, min(len(cl.hosts), r.randint(3, 12))):
        att = sim.host_att.get(h.name)
        tt = t + r.uniform(0, 40)
        sim.emit("fs_server_not_responding", cause, tt, att=att, host=h, source="kernel",
                 ctx=sim.ctx(att, h, tt, source="kernel", gpu_related=False, storage=cl.storage, fsname=cl.fsname,
                             fs=sim.spec.get("fs", "lustre")))
    for att in [a for a in sim.running.values() if a.run.cluster is cl and a.end is None]:
        writers = r.sample(range(0, att.world, 8), min(len(att.hosts), r.randint(1, 4)))
        for rk in writers:
            tt = t + r.uniform(5, 120)
            tmpl = r.choice(["checkpoint_write_failed", "storage_io_error", "gloo_barrier_timeout"])
            sim.emit(tmpl, cause, tt, att=att, host=att.host_of(rk), rank=rk, kind="crash",
                     ctx=sim.ctx(att, att.host_of(rk), tt, rank=rk))
        end = sim.storm(att, t, cause, skip_ranks=set(writers))
        sim.end_attempt(att, end, "storage stall", cause=cause, stopped=t)


def on_hang(sim: Sim, t: float, *, cause: str, code_version: str) -> None:
    """A software hang with no precursor (a dataloader deadlock at eval): only the storm."""
    cands = [a for a in sim.running.values() if a.end is None and a.run.code_version == code_version]
    if not cands:
        return
    att = sim.r.choice(cands)
    end = sim.storm(att, t, cause, desync=True)
    sim.end_attempt(att, end, "hang", cause=cause, stopped=t)


def on_unknown_xid(sim: Sim, t: float, *, cause: str, xid: int) -> None:
    """An Xid no failure follows: logged by the node agent, nothing else happens."""
    r = sim.r
    h = r.choice(sim.fleet.hosts)
    att = sim.host_att.get(h.name)
    sim.emit("xid_unexplained", cause, t, att=att, host=h, source="kernel",
             ctx=sim.ctx(att, h, t, source="kernel", local_rank=r.randrange(8), xid=xid))


def on_evict(sim: Sim, t: float, *, cause: str) -> None:
    """A kill nobody explained: a pod eviction (Kubernetes) or a bare SIGKILL in the SLURM
    controller's log; the run restarts."""
    att = _pick_live(sim)
    if att is None:
        return
    h = sim.r.choice(att.hosts)
    tmpl = "k8s_evicted" if sim.spec["scheduler"] == "k8s" else "slurmctld_wtermsig9"
    sim.emit(tmpl, cause, t, att=att, host=h, source="sched",
             ctx=sim.ctx(att, h, t, pod=f"{att.job_id}-worker-{att.hosts.index(h)}", nodelist=_nl(att)))
    sim.end_attempt(att, t + 30, "killed", cause=cause, stopped=t)


# ------------------------------------------------------------------ an attempt's own hazards

def own_time_limit(sim: Sim, att: Attempt, t: float, *, cause: str) -> None:
    h = att.hosts[0]
    sim.emit("slurm_time_limit", cause, t, att=att, host=h, source="sched", ctx=sim.ctx(att, h, t, nodelist=_nl(att)))
    # a planned end, not one of the unexpected interruptions the mix is about
    sim.end_attempt(att, t + 50, "time limit", restart_delay=(60, 900), stopped=t)


def own_leak(sim: Sim, att: Attempt, t: float, *, cause: str) -> None:
    """Host memory grows with steps since the attempt began; the OOM killer takes one worker."""
    r = sim.r
    h = r.choice(att.hosts)
    lr = r.randrange(8)
    rk = att.hosts.index(h) * 8 + lr
    sim.emit("kernel_oom_kill", cause, t, att=att, host=h, source="kernel",
             ctx=sim.ctx(att, h, t, source="kernel", gpu_related=False))
    if sim.spec["scheduler"] == "slurm":
        sim.emit("host_oom_cgroup", cause, t + r.uniform(1, 10), att=att, host=h, source="sched",
                 ctx=sim.ctx(att, h, t), host_field=h.name)
    else:
        sim.emit("elastic_exitcode_9", cause, t + r.uniform(1, 10), att=att, host=h, rank=rk, kind="crash",
                 ctx=sim.ctx(att, h, t, rank=rk))
    sim.crash_summary(att, t + 20, cause, rk, exitcode=-9)
    sim.end_attempt(att, t + 60, "host oom", cause=cause, stopped=t)


def own_data(sim: Sim, att: Attempt, t: float, *, step: int) -> None:
    """A bad sample: whichever rank reads it at ``step`` fails, after every restart."""
    r = sim.r
    run = att.run
    cause = run.data_cause
    rk = r.randrange(att.world)
    h = att.host_of(rk)
    info = sim.spec["bad_shards"][run.name][step]
    c = sim.ctx(att, h, t, rank=rk, step=step, shard=info["shard"], sample=info["sample"], data_style=info["style"])
    sim.emit("data_shard_error", cause, t, att=att, host=h, rank=rk, kind="crash", ctx=c)
    if r.random() < 0.5:
        sim.emit("dataloader_worker_exited", cause, t + 0.2, att=att, host=h, rank=rk, kind="crash",
                 ctx=sim.ctx(att, h, t + 0.2, rank=rk, step=step))
    sim.crash_summary(att, t + 10, cause, rk)
    run.bad_steps[step] -= 1
    sim.end_attempt(att, t + 30, "data", cause=cause, stopped=t)


def own_vbug(sim: Sim, att: Attempt, t: float, *, cause: str, symptoms: list[str]) -> None:
    """A version-specific kernel bug: any rank, any host, only under its version condition."""
    r = sim.r
    rk = r.randrange(att.world)
    h = att.host_of(rk)
    tmpl = r.choice(symptoms)
    sim.emit(tmpl, cause, t, att=att, host=h, rank=rk, kind="crash", ctx=sim.ctx(att, h, t, rank=rk))
    sim.crash_summary(att, t + 8, cause, rk)
    sim.end_attempt(att, t + 30, "version bug", cause=cause, stopped=t)


def own_sbug(sim: Sim, att: Attempt, t: float, *, cause: str, symptom: str, step: int) -> None:
    r = sim.r
    rk = r.randrange(att.world)
    h = att.host_of(rk)
    sim.emit(symptom, cause, t, att=att, host=h, rank=rk, kind="crash", ctx=sim.ctx(att, h, t, rank=rk, step=step))
    sim.end_attempt(att, t + 30, "single bug", cause=cause, stopped=t)


def own_regress(sim: Sim, att: Attempt, t: float, *, cause: str) -> None:
    """The NCCL upgrade regression: connection set-up fails on a handful of ranks."""
    r = sim.r
    for rk in r.sample(range(att.world), min(att.world, r.randint(3, 12))):
        h = att.host_of(rk)
        tt = t + r.uniform(0, 5)
        tmpl = "nccl_proxy_connect_failed" if r.random() < 0.7 else "nccl_ibv_modify_qp"
        sim.emit(tmpl, cause, tt, att=att, host=h, rank=rk, kind="crash", ctx=sim.ctx(att, h, tt, rank=rk))
    sim.end_attempt(att, t + 40, "nccl regression", cause=cause, stopped=t)


HANDLERS = {"bg": on_bg, "repeat": on_repeat, "flap": on_flap, "stall": on_stall, "hang": on_hang,
            "unknown_xid": on_unknown_xid, "evict": on_evict}
OWN_HANDLERS = {"time_limit": own_time_limit, "leak": own_leak, "data": own_data, "vbug": own_vbug,
                "sbug": own_sbug, "regress": own_regress}
__all__ = ["HARDWARE_MIX", "HANDLERS", "OWN_HANDLERS", "hardware_failure"]
