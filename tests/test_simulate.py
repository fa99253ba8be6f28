"""The scenario simulator: determinism, schema, truth kept apart, cause mix, confounders."""

import json
from collections import Counter
from datetime import datetime

import pytest

from incidentbot.simulate import NOISE, TEMPLATES, simulate, to_records, write_scenario

FIELDS = {
    "event_id",
    "job_id",
    "message",
    "time",
    "cluster",
    "host",
    "gpu",
    "rank",
    "step",
    "code_version",
    "versions",
    "kind",
}


@pytest.fixture(scope="module")
def small():
    return simulate(1, size="small")


def test_deterministic(small):
    again = simulate(1, size="small")
    assert again.events == small.events
    assert again.event_cause == small.event_cause
    assert simulate(2, size="small").events != small.events


def test_events_follow_the_ingest_schema_and_hold_no_truth(small):
    assert 700 <= len(small.events) <= 8_000
    ids = set()
    for ev in small.events:
        assert FIELDS <= set(ev) <= FIELDS | {"attributes"}
        assert isinstance(ev["job_id"], str) and ev["message"]
        datetime.fromisoformat(ev["time"].replace("Z", "+00:00"))
        assert ev["rank"] is None or ev["rank"] >= 0
        assert ev["step"] is None or ev["step"] >= 0
        assert all(isinstance(v, str) for v in ev["versions"].values())
        ids.add(ev["event_id"])
    assert len(ids) == len(small.events)
    assert set(small.event_cause) == ids
    blob = json.dumps(small.events)
    for c in small.causes:
        if c["id"] != NOISE:
            assert c["id"] not in blob


def test_cause_mix_and_the_single_bug(small):
    causes = {c["id"]: c for c in small.causes}
    kinds = Counter(c["kind"] for c in small.causes)
    assert kinds["localised_hardware"] >= kinds["regression"] >= 1  # GPU faults most common
    assert "sw-torchsum" in causes
    tm = small.event_template
    sym = {tm[e] for e, c in small.event_cause.items() if c == "sw-torchsum"}
    assert sym == {"nan_loss", "cuda_illegal_memory_access", "device_side_assert", "grad_norm_spike"}
    # the torch.sum bug fires only on torch >= 2.3.0, on many hosts
    evs = [ev for ev in small.events if small.event_cause[ev["event_id"]] == "sw-torchsum"]
    assert {ev["versions"]["torch"] for ev in evs} <= {"2.3.0", "2.3.1"}
    assert len({ev["host"] for ev in evs}) >= 4


def test_confounders_share_text_across_causes():
    sc = simulate(3, size="medium")
    by_tmpl = {}
    for e, c in sc.event_cause.items():
        by_tmpl.setdefault(sc.event_template[e], set()).add(c)
    ima = {c.split("-")[0] for c in by_tmpl["cuda_illegal_memory_access"]}
    assert {"hw", "sw"} <= ima
    wd = {c.split("-")[0] for c in by_tmpl["nccl_watchdog_timeout"]}
    assert {"hw", "net"} <= wd
    assert {c.split("-")[0] for c in by_tmpl["nan_loss"]} >= {"sw", "data"}


def test_texts_look_real(small):
    msgs = {small.event_template[ev["event_id"]]: ev["message"] for ev in small.events}
    assert "Watchdog caught collective operation timeout: WorkNCCL(SeqNum=" in msgs["nccl_watchdog_timeout"]
    assert (
        "NVRM: Xid (PCI:0000:" in msgs["xid79_fallen_off_bus"] and "fallen off the bus" in msgs["xid79_fallen_off_bus"]
    )
    # variable parts vary
    wd = [ev["message"] for ev in small.events if small.event_template[ev["event_id"]] == "nccl_watchdog_timeout"]
    assert len(set(wd)) > 0.9 * len(wd)


def test_write_scenario(tmp_path, small):
    out, truth = write_scenario(small, tmp_path / "events.jsonl")
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(lines) == len(small.events)
    assert json.loads(lines[0]) == small.events[0]
    t = json.loads((tmp_path / "events.truth.json").read_text())
    assert t["event_cause"] == small.event_cause
    assert {c["id"] for c in t["causes"]} == set(small.event_cause.values())
    assert json.loads((tmp_path / "events.topology.json").read_text()) == small.topology


def test_to_records_stand_in_grouping(small):
    recs, sigs, id_map = to_records(small)
    assert len(recs) == len(small.events)
    assert {s.title.replace(" ", "_") for s in sigs.values()} <= set(TEMPLATES)
    assert id_map[recs[0].id] == small.events[0]["event_id"]


@pytest.mark.slow
def test_large_scenario_analysed_within_budget():
    import time

    from incidentbot.analysis import analyze

    sc = simulate(1, size="large")
    recs, sigs, _ = to_records(sc)
    assert len(recs) >= 70_000
    t0 = time.perf_counter()
    analyze(recs, sigs, topology=sc.topology)
    assert time.perf_counter() - t0 <= 5.0


@pytest.mark.slow
def test_large_scenario_single_bug_is_one_hypothesis():
    from incidentbot.analysis import analyze

    sc = simulate(1, size="large")
    recs, sigs, _ = to_records(sc)
    props = analyze(recs, sigs, topology=sc.topology)
    assert any(p.kind == "regression" and len(p.signature_ids) == 4 for p in props)


def test_cli_simulate_ingest_analyze_with_the_written_topology(tmp_path):
    """The documented loop from a terminal: simulate a scenario, ingest it, analyse it with the
    topology file the simulator wrote (INCIDENTBOT_TOPOLOGY takes its JSON as well as
    'host switch' lines)."""
    import os
    import subprocess
    import sys

    env = dict(
        os.environ, INCIDENTBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}", INCIDENTBOT_INGEST_TOKENS="t"
    )
    env.pop("INCIDENTBOT_TOPOLOGY", None)

    def run(*args, **extra):
        out = subprocess.run(
            [sys.executable, "-m", "incidentbot", *args],
            capture_output=True,
            text=True,
            env={**env, **extra},
            cwd=tmp_path,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    assert "wrote" in run("simulate", "--seed", "2", "--size", "small", "--out", "ev.jsonl")
    topology = tmp_path / "ev.topology.json"
    assert topology.exists()
    assert "accepted" in run("ingest", "ev.jsonl")
    analysed = run("analyze", INCIDENTBOT_TOPOLOGY=str(topology))
    assert "hypotheses" in analysed
    hyps = json.loads(run("hypotheses", "--json"))["hypotheses"]
    assert hyps and all(h["id"].startswith("H-") for h in hyps)


def test_load_topology_formats_and_errors(tmp_path):
    from incidentbot.runtime import load_topology
    from incidentbot.settings import SettingsError

    lines = tmp_path / "t.txt"
    lines.write_text("# host switch\nnode1 leaf1\nnode2,leaf1\n\n")
    assert load_topology(lines) == {"node1": "leaf1", "node2": "leaf1"}
    js = tmp_path / "t.json"
    js.write_text(json.dumps({"node1": "leaf1", "node3": "leaf2"}))
    assert load_topology(js) == {"node1": "leaf1", "node3": "leaf2"}
    for bad, needle in (
        ("node1 leaf1 extra\n", "expected 'host switch'"),
        ('{"node1": 3}', "JSON object"),
        ("{not json", "not valid JSON"),
    ):
        p = tmp_path / "bad"
        p.write_text(bad)
        with pytest.raises(SettingsError) as exc:
            load_topology(p)
        assert "INCIDENTBOT_TOPOLOGY" in str(exc.value) and needle in str(exc.value)
    with pytest.raises(SettingsError):
        load_topology(tmp_path / "missing")


# --------------------------------------------------------------------------- shapes

import dataclasses  # noqa: E402
import re  # noqa: E402

from incidentbot.analysis.names import (  # noqa: E402
    candidate_groups,
    canonical_host,
    expand_nodelist,
    link_gpu_ids,
    normalise_gpu,
)
from incidentbot.simulate import (  # noqa: E402
    CLASSIC,
    NAMINGS,
    RESTARTS,
    SINGLE_BUG,
    Shapes,
    compress_nodelist,
    draw_shapes,
)

TIMEOUT = re.compile(r"Timeout\(ms\)=(\d+)")
KERNEL = {
    "xid79_fallen_off_bus",
    "xid48_dbe",
    "xid63_row_remap",
    "xid94_contained",
    "xid119_gsp_timeout",
    "nfs_not_responding",
}


def shaped(seed=5, size="small", **kw):
    return simulate(seed, size=size, shapes=dataclasses.replace(draw_shapes(seed), **kw))


def of_cause(sc, pred):
    return [ev for ev in sc.events if pred(sc.event_cause[ev["event_id"]])]


def test_shapes_are_drawn_per_seed_and_recorded_in_the_truth():
    drawn = [draw_shapes(s) for s in range(1, 30)]
    assert draw_shapes(7) == draw_shapes(7)
    assert {d.naming for d in drawn} == set(NAMINGS)
    assert {d.restarts for d in drawn} == set(RESTARTS)
    assert {d.single_bug for d in drawn} == {"one_dim", "torch_cuda_pair"}
    sc = simulate(4, size="small")
    assert sc.truth["shapes"] == dataclasses.asdict(draw_shapes(4))
    assert sc.truth["single_bug"] == SINGLE_BUG
    for c in sc.truth["causes"]:
        assert c["kind"] and c["shape"]
    with pytest.raises(ValueError, match="shapes"):
        simulate(1, shapes="odd")


def test_classic_shapes_keep_the_old_fleet():
    sc = simulate(2, size="small", shapes="classic")
    assert sc.shapes == dataclasses.asdict(CLASSIC)
    assert all(re.fullmatch(r"c\d-gpu\d{4}", ev["host"]) for ev in sc.events)
    assert all(re.fullmatch(r"c\d-run\d{3}", ev["job_id"]) and "attributes" not in ev for ev in sc.events)
    assert {ev["gpu"] for ev in sc.events} <= {None} | {f"GPU{g}" for g in range(8)}


@pytest.mark.parametrize(
    "naming,pattern",
    [
        ("ip", r"10\.\d+\.\d+\.\d+"),
        ("rack", r"c\d-r\d\d-n\d\d"),
        ("slurm", r"(node|gpu|dgx|hgx)\d{3}"),
        ("classic", r"c\d-gpu\d{4}"),
    ],
)
def test_host_naming_conventions_and_names_reveal_the_leaves(naming, pattern):
    sc = shaped(naming=naming, fqdn_kernel=False, nodelist_jobs=False)
    assert all(re.fullmatch(pattern, h) for h in sc.topology)
    leaves: dict[str, set[str]] = {}
    for h, leaf in sc.topology.items():
        leaves.setdefault(leaf, set()).add(h)
    # without the topology file, every leaf is among the groups the names suggest
    groups = set(candidate_groups(sc.topology).values())
    assert all(frozenset(hs) in groups for hs in leaves.values())


def test_fqdn_in_kernel_lines_short_names_elsewhere():
    sc = shaped(naming="rack", fqdn_kernel=True)
    kernel = [ev for ev in sc.events if sc.event_template[ev["event_id"]] in KERNEL]
    other = [ev for ev in sc.events if sc.event_template[ev["event_id"]] not in KERNEL | {"slurm_time_limit"}]
    assert kernel and all(ev["host"].endswith(".example.com") for ev in kernel)
    assert all(canonical_host(ev["host"]) in sc.topology for ev in kernel)
    assert all(ev["host"] in sc.topology for ev in other)


def test_scheduler_lines_carry_the_jobs_node_list():
    for seed in range(1, 10):
        sc = shaped(seed, naming="slurm", nodelist_jobs=True)
        lines = [ev for ev in sc.events if sc.event_template[ev["event_id"]] == "slurm_time_limit"]
        if any("[" in ev["host"] for ev in lines):
            break
    assert lines, "some job reached its time limit"
    for ev in lines:
        hosts = expand_nodelist(ev["host"])
        assert set(hosts) <= set(sc.topology) and len(hosts) >= 4
        assert sc.event_cause[ev["event_id"]] == NOISE
        assert re.search(r" ON (\S+) ", ev["message"]).group(1) in hosts


def test_compress_nodelist_round_trips():
    for hosts in (
        ["node001", "node002", "node003", "node007"],
        ["gpu-01-ib"],
        ["c1-r01-n07", "c1-r01-n08"],
        ["a", "node9", "node10"],
    ):
        assert expand_nodelist(compress_nodelist(hosts)) == hosts
    assert compress_nodelist(["node001", "node002", "node003", "node007"]) == "node[001-003,007]"


@pytest.mark.parametrize("gpu_ids", ["index", "pci_kernel", "pci"])
def test_gpu_as_index_or_pci_bus_id(gpu_ids):
    sc = shaped(gpu_ids=gpu_ids)
    spelled = {}
    for ev in sc.events:
        if ev["gpu"] is None:
            continue
        kernel = sc.event_template[ev["event_id"]] in KERNEL
        n = normalise_gpu(ev["gpu"])
        want_pci = gpu_ids == "pci" or (gpu_ids == "pci_kernel" and kernel)
        assert n.startswith("pci:") == want_pci, (gpu_ids, ev["gpu"])
        spelled.setdefault(want_pci, set()).add(ev["gpu"])
    if gpu_ids == "index":
        # the Xid text names the bus id, the field the index: linked per host
        obs = []
        for ev in sc.events:
            m = re.search(r"PCI:([0-9a-f:]+)\)", ev["message"])
            if m and ev["gpu"]:
                obs.append((ev["host"], ev["gpu"], m.group(1)))
        links = link_gpu_ids(obs)
        assert links and all(v.isdigit() for v in links.values())


def test_restart_conventions():
    same = shaped(restarts="same")
    runs = {ev["job_id"] for ev in same.events}
    assert all("attributes" not in ev for ev in same.events)
    suffix = shaped(restarts="suffix")
    ids = {ev["job_id"] for ev in suffix.events}
    assert any(re.search(r"-r\d+$", j) for j in ids)
    assert {re.sub(r"-r\d+$", "", j) for j in ids} == runs
    for restarts, pattern in (("requeue", r"\d{6}"), ("elastic", r"c\d-run\d{3}-[0-9a-f]{8}")):
        sc = shaped(restarts=restarts)
        assert all(re.fullmatch(pattern, ev["job_id"]) for ev in sc.events)
        assert {ev["attributes"]["run_id"] for ev in sc.events} == runs
        # a new job id per attempt, attempts in time order within a run
        by_run: dict[str, list] = {}
        for ev in sc.events:
            by_run.setdefault(ev["attributes"]["run_id"], []).append(ev)
        for evs in by_run.values():
            first_seen: dict[int, str] = {}
            for ev in evs:
                first_seen.setdefault(ev["attributes"]["attempt"], ev["time"])
            attempts = sorted(first_seen)
            assert [first_seen[a] for a in attempts] == sorted(first_seen[a] for a in attempts)
            per_attempt = {ev["attributes"]["attempt"]: ev["job_id"] for ev in evs}
            assert len(set(per_attempt.values())) == len(per_attempt)
        recs, _sigs, id_map = to_records(sc)
        ev_by_id = {ev["event_id"]: ev for ev in sc.events}
        for r in recs[:200]:
            ev = ev_by_id[id_map[r.id]]
            assert (r.run, r.attempt) == (ev["attributes"]["run_id"], ev["attributes"]["attempt"])
    recs, _s, _m = to_records(same)
    assert all(r.run is None and r.attempt is None for r in recs)


def test_storms_come_after_the_watchdog_timeout_the_text_states():
    sc = shaped(3, size="medium", watchdog_ms=(600000, 1800000))
    stated = {
        int(TIMEOUT.search(ev["message"]).group(1))
        for ev in sc.events
        if sc.event_template[ev["event_id"]] == "nccl_watchdog_timeout"
    }
    assert stated == {600000, 1800000}
    # a hardware precursor storm: the watchdog lines come the stated timeout after the Xid
    checked = 0
    for c in sc.causes:
        if c["shape"] != "storm:hardware_precursor":
            continue
        evs = [ev for ev in sc.events if sc.event_cause[ev["event_id"]] == c["id"]]
        xids = [(ev["job_id"], datetime.fromisoformat(ev["time"][:-1])) for ev in evs if "NVRM: Xid" in ev["message"]]
        for ev in evs:
            m = TIMEOUT.search(ev["message"])
            if not m:
                continue
            t = datetime.fromisoformat(ev["time"][:-1])
            lag = [(t - x).total_seconds() for j, x in xids if x <= t and j == ev["job_id"]]
            assert lag and int(m.group(1)) / 1000 <= min(lag) <= int(m.group(1)) / 1000 + 120
            checked += 1
    assert checked


def test_storm_causes_storage_and_hang():
    found_storage = found_hang = False
    for seed in range(1, 8):
        sc = simulate(seed, size="medium")
        causes = {c["id"]: c for c in sc.causes}
        if "infra-storage" in causes:
            evs = of_cause(sc, lambda c: c == "infra-storage")
            assert {ev["cluster"] for ev in evs} == {causes["infra-storage"]["scope"]["cluster"]}
            runs = {ev.get("attributes", {}).get("run_id", re.sub(r"-r\d+$", "", ev["job_id"])) for ev in evs}
            found_storage |= len(runs) >= 2  # every job of the cluster at once
            assert {sc.event_template[ev["event_id"]] for ev in evs} <= {"nfs_not_responding", "nccl_watchdog_timeout"}
        if "sw-hang" in causes:
            evs = of_cause(sc, lambda c: c == "sw-hang")
            assert {sc.event_template[ev["event_id"]] for ev in evs} == {"nccl_watchdog_timeout"}  # no precursor
            found_hang = True
    assert found_storage and found_hang


def test_single_bug_on_a_torch_cuda_pair():
    sc = shaped(2, single_bug="torch_cuda_pair")
    bug = of_cause(sc, lambda c: c == SINGLE_BUG)
    assert bug and {(ev["versions"]["torch"], ev["versions"]["cuda"]) for ev in bug} == {("2.3.1", "12.6")}
    # each half of the pair also ran without the other (clean exposure the onset must not count against it)
    ran = {
        (ev["versions"]["torch"], ev["versions"]["cuda"])
        for ev in sc.events
        if sc.event_template[ev["event_id"]] == "progress"
    }
    assert ("2.3.0", "12.6") in ran and ("2.3.1", "12.4") in ran


def test_driver_stands_for_the_cluster():
    sc = shaped(naming="classic", driver_per_cluster=True)
    drivers: dict[str, set[str]] = {}
    for ev in sc.events:
        drivers.setdefault(ev["cluster"], set()).add(ev["versions"]["driver"])
    assert all(len(v) == 1 for v in drivers.values())
    assert len({next(iter(v)) for v in drivers.values()}) == len(drivers)
    free = shaped(naming="classic", driver_per_cluster=False)
    assert len({ev["versions"]["driver"] for ev in free.events}) > 1


def test_data_fault_may_move_to_another_rank_after_a_restart():
    moved = shaped(3, data_rank_moves=True)
    fixed = shaped(3, data_rank_moves=False)
    ranks = lambda sc: {
        ev["rank"]
        for ev in of_cause(sc, lambda c: c.startswith("data-"))  # noqa: E731
        if sc.event_template[ev["event_id"]] == "dataloader_zlib_error"
    }
    assert len(ranks(fixed)) == 1
    assert len(ranks(moved)) > 1


def test_interruptions_follow_the_published_shares():
    share = Counter()
    for seed in (1, 2, 3):
        sc = simulate(seed, size="medium")
        for c in sc.causes:
            share["gpu" if c["kind"] == "localised_hardware" else c["kind"]] += c.get("interruptions", 0)
    total = sum(share.values())
    assert 0.5 <= share["gpu"] / total <= 0.8  # Llama 3: 64% of unexpected interruptions
    assert share["switch"] and share["regression"] and share["hang"]


# --------------------------------------------------------------------------- the bench's scores


def _bench():
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    return importlib.import_module("diagnosis")


def test_bench_score_macro_and_symptom_balanced():
    D = _bench()
    # cause A: a 100-event symptom and a 2-event one; cause B: 10 events; 5 noise events
    ev_cause, ev_tmpl = {}, {}
    for i in range(100):
        ev_cause[f"a{i}"], ev_tmpl[f"a{i}"] = "A", "storm"
    for i in range(2):
        ev_cause[f"p{i}"], ev_tmpl[f"p{i}"] = "A", "precursor"
    for i in range(10):
        ev_cause[f"b{i}"], ev_tmpl[f"b{i}"] = "B", "other"
    for i in range(5):
        ev_cause[f"n{i}"], ev_tmpl[f"n{i}"] = NOISE, "progress"
    truth = {"event_cause": ev_cause, "event_template": ev_tmpl, "causes": [], "single_bug": "A"}
    # H1 holds A's storm only (drops the precursor); H2 holds B and two noise events
    e2h = {f"a{i}": "H1" for i in range(100)} | {f"b{i}": "H2" for i in range(10)} | {"n0": "H2", "n1": "H2"}
    s = D.score(truth, e2h)
    assert s.per_cause["A"] == pytest.approx(2 * 100 / (102 + 100))
    assert s.per_cause_balanced["A"] == pytest.approx((1.0 + 0.0) / 2)  # the small symptom weighs as much
    assert s.per_cause["B"] == pytest.approx(2 * 10 / (10 + 12))
    assert s.per_cause_balanced["B"] == pytest.approx(1.0)  # restricted to B's symptom, noise is not counted
    assert s.macro_f1 == pytest.approx((s.per_cause["A"] + s.per_cause["B"]) / 2)
    assert not s.single_bug_found  # one symptom missing
    assert s.noise_absorbed == pytest.approx(2 / 5)
    e2h.update({"p0": "H1", "p1": "H1"})
    s = D.score(truth, e2h)
    assert s.single_bug_found and s.per_cause_balanced["A"] == pytest.approx(1.0)
    # nothing placed: zeros, not errors
    s = D.score(truth, {})
    assert s.macro_f1 == 0.0 and s.balanced_f1 == 0.0 and not s.single_bug_found


def test_bench_seed_sets_are_apart():
    D = _bench()
    tune, report = D.SEED_SETS["tune"], D.SEED_SETS["report"]
    assert max(tune) < 100 <= 1000 <= min(report) and len(report) >= 30
    assert D.parse_seeds("report")[1] == report and "never looked at" in D.parse_seeds("report")[0]
    assert D.parse_seeds("1,3-5")[1] == [1, 3, 4, 5]
    with pytest.raises(SystemExit):
        D.parse_seeds("1,x")
