"""The scenario simulator: determinism, schema, truth kept apart, cause mix, confounders."""

import json
from collections import Counter
from datetime import datetime

import pytest

from incidentbot.simulate import NOISE, TEMPLATES, simulate, to_records, write_scenario

FIELDS = {"event_id", "job_id", "message", "time", "cluster", "host", "gpu", "rank", "step", "code_version",
          "versions", "kind"}


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
    assert "NVRM: Xid (PCI:0000:" in msgs["xid79_fallen_off_bus"] and "fallen off the bus" in msgs["xid79_fallen_off_bus"]
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
    props = analyze(recs, sigs, topology=sc.topology)
    assert time.perf_counter() - t0 <= 5.0
    assert any(p.kind == "regression" and len(p.signature_ids) == 4 for p in props)


def test_cli_simulate_ingest_analyze_with_the_written_topology(tmp_path):
    """The documented loop from a terminal: simulate a scenario, ingest it, analyse it with the
    topology file the simulator wrote (INCIDENTBOT_TOPOLOGY takes its JSON as well as
    'host switch' lines)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, INCIDENTBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}", INCIDENTBOT_INGEST_TOKENS="t")
    env.pop("INCIDENTBOT_TOPOLOGY", None)

    def run(*args, **extra):
        out = subprocess.run([sys.executable, "-m", "incidentbot", *args], capture_output=True, text=True,
                             env={**env, **extra}, cwd=tmp_path, timeout=300)
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
    for bad, needle in (("node1 leaf1 extra\n", "expected 'host switch'"), ('{"node1": 3}', "JSON object"),
                        ("{not json", "not valid JSON")):
        p = tmp_path / "bad"
        p.write_text(bad)
        with pytest.raises(SettingsError) as exc:
            load_topology(p)
        assert "INCIDENTBOT_TOPOLOGY" in str(exc.value) and needle in str(exc.value)
    with pytest.raises(SettingsError):
        load_topology(tmp_path / "missing")
