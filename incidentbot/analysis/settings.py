"""Every threshold of the analysis, in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    burst_gap_s: float = 30.0  # events of one signature in one job closer than this are one occurrence
    storm_min_events: int = 8
    storm_min_hosts: int = 3
    data_min_repeats: int = 3  # same (job, step) failing in this many separate occurrences
    data_min_repeats_moved: int = 2  # ... or in this many on different hosts (the record moved, a GPU would not)
    alpha: float = 1e-3  # family-wise, after Bonferroni
    alpha_known: float = 1e-2  # when the text's known meaning (hardware/network) agrees with localisation
    min_localised: int = 3
    min_localised_known: int = 2
    # texts from inside one process on one GPU (a CUDA error, a NaN, CUDA OOM): localised to a host
    # or a GPU, never to a switch or a group of hosts the names suggest
    process_local_categories: tuple[str, ...] = ("cuda_runtime", "cuda_oom", "loss_instability")
    min_onset: int = 5  # occurrences needed before an onset is claimed
    alpha_onset: float = 5e-3  # family-wise over all version dimensions and cut points
    onset_stray_frac: float = 0.05  # tolerated share of occurrences outside the onset versions
    onset_stray_of_expected: float = 0.1  # ... and at most this share of what the rate would predict there
    # a storm's cause lies up to the watchdog's timeout before it: read from the text when stated,
    # else this default (PyTorch's NCCL default is 10 min, many jobs set 30 min; the longer is safe
    # because the nearest reliable precursor is taken)
    watchdog_timeout_s: float = 1800.0
    watchdog_margin: float = 1.1  # times the timeout ...
    watchdog_slack_s: float = 120.0  # ... plus this: the watchdog's own polling and the log's delay
    cooccur_window_s: float = 60.0
    cooccur_frac: float = 0.7
    # a regression's rarer symptoms (cooccurrence.join_scope): a text whose occurrences lie inside the
    # regression's versions more often than their share of the steps gives (binomial, this level,
    # corrected for the regressions tried) ...
    alpha_scope_join: float = 0.05
    # ... or all of them inside versions that ran at most this share of the steps (by chance: share ** n)
    scope_join_min_test: int = 3  # a text with lines outside the versions joins with at least this many inside
    scope_join_rare_share: float = 0.5
    # the scheduler's word on how a job ended (its categories): no symptom of a code bug, so it joins
    # no regression (join_scope) and takes part in no pooled onset
    scheduler_categories: tuple[str, ...] = ("slurm", "scheduler", "kubernetes", "k8s", "pod")
    scope_join_rate_ratio: float = 0.35  # ... and its rate outside the versions is at most this share of inside
    # ... or, too few lines for a test, the lines inside are most likely the regression's: the text's
    # rate outside, carried inside, gives less than this share of what is there (and at least
    # scope_join_likely_min lines inside). Such a text's lines go nowhere else: the alternative is
    # "cause not yet known", so the likelier home is taken, and the evidence says it is a guess.
    scope_join_likely_ratio: float = 0.45
    scope_join_likely_min: int = 2
    # one text of two regressions (cooccurrence.split_by_rate): the level for moving the lines inside
    # the other's versions there, corrected for the texts and pairs tried
    alpha_split_rate: float = 5e-3
    scope_merge_stray_frac: float = 0.1  # two onsets are one when each has at most this share outside the other
    scope_merge_nested_frac: float = 0.25  # ... or one has none outside and the other at most this share
    rank0_frac: float = 0.9
    pool_min_per_sig: int = 2  # pooled onset: occurrences each leftover text needs ...
    pool_min_sigs: int = 2  # ... and how many texts share the onset
    pool_precursor_frac: float = 0.5  # a text this often just before storms is a precursor, not pooled
    # a pooled member whose lines all sit in one part of the onset (nccl 2.21.5 within TE 1.12.0)
    # the others' lines avoid is a second cause: weighed with this many lines, jobs, others outside
    pool_apart_min: int = 5
    pool_apart_min_jobs: int = 3
    pool_apart_min_rest: int = 3
    pool_follower_frac: float = 0.5  # a text this often right after another's follows failures: its openers only
    onset_broad_p: float = 0.01  # a clean part of an onset this unlikely by chance: try a version pair
    pool_classes: tuple[str, ...] = ("software", "unknown", "data")  # texts a code bug can show as
    # coverage: what no rule explains
    cover_min_events: int = 3  # a signature's leftover standing for this many events gets a hypothesis
    cover_interruptions: bool = True  # ... and one with fewer when its lines stopped or restarted their job
    cover_confidence: float = 0.2  # "cause not yet known"
    # storms with no precursor concentrated on one version (coverage._hang_version): at least this many
    hang_version_min: int = 3
    cover_confidence_shared: float = 0.4  # a storm across a cluster's jobs at once
    benign_markers: tuple[str, ...] = (
        "info:",
        "info ",
        "warning",
        "warn",
        "progress",
        "took",
        "slow",
        "loss scale",
        "overflow",
        "remapping",
        "sending process",
        "iteration",
        # a training progress report sent as an event (the steps it ran, not a failure)
        "tflops",
        "s/step",
        "tokens/s",
        "samples/s",
        "throughput",
        # Megatron's progress line, whose title may be cut before its TFLOPs
        "elapsed time per iteration",
        "learning rate:",
    )
    # ... unless the text also says something failed: a log level is not a meaning. NCCL logs its
    # errors at WARN (it has no ERROR level), and "WARNING: ... failed with error ..." reports a
    # failure whatever the level word before it.
    failure_markers: tuple[str, ...] = (
        "fail",
        "error",
        "timed out",
        "timeout",
        "abort",
        "exception",
        "invalid",
        "refused",
        "unreachable",
        "corrupt",
        # a training anomaly the job reports (a grad-norm spike, the update skipped) at WARNING
        "spike",
    )
    # ... though a failure the text says is being retried is transient (NCCL's bootstrap logs
    # "Connection refused, retrying" at WARN while peers come up): benign again
    transient_markers: tuple[str, ...] = ("retry", "retrying")
    # benign texts that are routine by design (INFO chatter, progress reports, dynamic loss scaling,
    # checkpoint timings): spread evenly, they found no hypothesis at all (no onset, bad step or
    # pool: which jobs log them says how they were configured, not what broke). A WARNING of an
    # anomaly (a grad-norm spike) is benign-sounding but not routine: it may still show a bug's onset.
    routine_markers: tuple[str, ...] = (
        "info:",
        "info ",
        "progress",
        "took",
        "loss scale",
        "tflops",
        "s/step",
        "tokens/s",
        "samples/s",
        "throughput",
        # Megatron's progress line, whose title may be cut before its TFLOPs
        "elapsed time per iteration",
        "learning rate:",
    )
    job_level_markers: tuple[str, ...] = ("time limit", "timelimit", "due to time", "preempt")
    benign_min_places: int = 3  # benign noise is spread: over at least this many hosts ...
    benign_max_host_share: float = 0.5  # ... with no host holding more than this share of it
    cluster_storm_span_s: float = 300.0  # storms of one text starting this close in one cluster: at once
    cluster_storm_min_jobs: int = 3
    cluster_storm_share: float = 0.6  # ... hitting at least this share of the jobs running there
    # lines about a shared file system: storms of two or more jobs at once, each after one, are its stall
    storage_markers: tuple[str, ...] = (
        "nfs:",
        "nfs ",
        "lustre",
        "gpfs",
        "beegfs",
        "weka",
        "checkpoint_io",
        "checkpoint write failed",
        "stale file handle",
        "storage",
    )
    name_group_min_hosts: int = 4  # a group the host names suggest (subnet, rack, range) has at least this many
    nodelist_limit: int = 4096  # a SLURM node list in the host field expands to at most this many names
    # incidents (incidents.py), pass 2: one job's failure is a few lines within seconds
    episode_gap_s: float = 60.0  # lines of one job this close are one episode ...
    episode_max_span_s: float = 600.0  # ... spanning at most this
    incident_lead_share: float = (
        0.5  # a text coming with others this share of the time leads or joins (else background)
    )
    incident_confidence: float = 0.35  # a host incident: the lines' meaning, place and time, no test of chance
    episode_join_owned: bool = True  # an episode's leftover lines join the hypothesis holding its first line
    storm_companion_s: float = 60.0  # a storm's job's leftover lines this close to it are its abort lines
    # incidents, pass 1 (and both): one job's failure begun by a hardware/network error on one host
    incident_classes: tuple[str, ...] = ("hardware", "network")  # texts that can begin one (pass 2: in this order)
    # ... and whatever their class: the driver's own report on one GPU (an Xid 13 may be the code's
    # bad access or the GPU's; either way that GPU's failure began there)
    incident_categories: tuple[str, ...] = ("xid",)
    # an incident whose first line names no device: a GPU's text (an Xid with no bus id) goes with
    # the host's only blamed GPU; a NIC's is the NIC's; any other stays the host's own
    gpu_categories: tuple[str, ...] = ("xid", "gpu_lost", "gpu_health_check", "cuda_runtime")
    nic_categories: tuple[str, ...] = ("infiniband_rdma",)
    incident_gap_s: float = 120.0  # the incident's lines follow each other at most this far apart
    incident_pre_s: float = 5.0  # the host's own lines this much before its error (clocks of two logs)
    incident_simul_s: float = 10.0  # the same text on several hosts this close: a shared component
    incident_follow_frac: float = 0.5  # a text followed by a failure less often than this is background
    incident_background_min: int = 3  # ... when it has at least this many lines (one lone line may be a failure)
    host_down_markers: tuple[str, ...] = ("nodenotready", "node not ready", "node failure", "node_fail")
    incident_tie_s: float = 10.0  # a PCI bus id and a GPU index on one host this close name one GPU


DEFAULT = Settings()
