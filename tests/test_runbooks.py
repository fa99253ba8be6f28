"""Tests for incidentbot.runbooks and the shipped runbooks/ directory."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from incidentbot.runbooks import (
    CATEGORIES,
    CAUSE_CLASSES,
    CheckError,
    Runbook,
    check_runbooks,
    load_runbooks,
    match_runbooks,
    summarize,
)
from incidentbot.runbooks.check import main_check

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK_DIR = ROOT / "runbooks"
DATA = ROOT.parent / "shared" / "data" / "gpu-failures"
EXEMPLARS = DATA / "exemplars.jsonl"


# --------------------------------------------------------------------------- helpers


def _exemplars() -> list[dict]:
    if not EXEMPLARS.is_file():
        return []
    return [json.loads(line) for line in EXEMPLARS.read_text(encoding="utf-8").splitlines() if line.strip()]


needs_data = pytest.mark.skipif(not EXEMPLARS.is_file(), reason="shared exemplar data not present")


@pytest.fixture(scope="module")
def shipped() -> list[Runbook]:
    return load_runbooks(RUNBOOK_DIR)


@pytest.fixture(scope="module")
def by_id(shipped) -> dict[str, Runbook]:
    return {rb.id: rb for rb in shipped}


GOOD = """\
---
id: {id}
title: Example runbook
owner: "@gpu-fleet"
last_reviewed: 2026-01-15
severity: high
match:
  categories: [xid]
  cause_classes: [hardware]
  xid: [79]
  patterns:
    - 'fallen off the bus'
examples:
  - 'NVRM: Xid (PCI:0000:01:00): 79, GPU has fallen off the bus.'
references:
  - https://docs.nvidia.com/deploy/xid-errors/
related: []
---
# Example

## Symptoms

- Something broke.

## Confirm

1. Run `nvidia-smi`.

## Act

- Drain the node.

## Escalate

- Call someone.
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in {path}")


def errors_for(directory: Path, **kw) -> list[str]:
    return [str(e) for e in check_runbooks(directory, **kw)]


# --------------------------------------------------------------------------- shipped runbooks


def test_shipped_runbooks_pass_check():
    errors = check_runbooks(RUNBOOK_DIR)
    assert errors == [], "\n".join(map(str, errors))


def test_shipped_runbooks_all_load(shipped):
    files = sorted(RUNBOOK_DIR.glob("*.md"))
    assert len(shipped) == len(files)
    assert 18 <= len(shipped) <= 24


REQUIRED_TOPICS = {
    "gpu-fallen-off-bus": [79],
    "gpu-ecc-row-remap": [48, 63, 64, 94, 95],
    "nvlink-nvswitch-errors": [74, 144, 145, 146, 147, 148, 149, 150],
    "gpu-gsp-timeout": [119, 120],
    "nccl-watchdog-timeout": [],
    "infiniband-link-errors": [],
    "cuda-oom": [],
    "cuda-illegal-memory-access": [],
    "nan-loss-spikes": [],
    "silent-data-corruption": [],
    "dataloader-host-oom": [],
    "checkpoint-io-failures": [],
    "rendezvous-failures": [],
    "gpu-throttling-stragglers": [],
    "upstream-framework-regression": [],
    "scheduler-kills": [],
    "launcher-child-failed": [],
    "gpu-health-check-failures": [],
}


@pytest.mark.parametrize("rb_id,xids", sorted(REQUIRED_TOPICS.items()))
def test_required_runbooks_present(by_id, rb_id, xids):
    assert rb_id in by_id
    rb = by_id[rb_id]
    assert set(xids) <= set(rb.match.xid)
    for section in ("Symptoms", "Confirm", "Act", "Escalate"):
        assert any(h.startswith(section) for h in rb.sections), (rb_id, section)


def test_every_runbook_says_when_to_drain_and_links_others(shipped):
    for rb in shipped:
        act = next(t for h, t in rb.sections.items() if h.startswith("Act"))
        assert re.search(r"\bdrain", act, re.I), f"{rb.id}: Act section must say when (not) to drain"
        assert re.search(r"\]\([a-z0-9-]+\.md\)", rb.body), f"{rb.id}: no link to another runbook"
        assert rb.related, rb.id
        assert isinstance(rb.last_reviewed, date)
        assert rb.owner.startswith("@")


def test_confirm_sections_use_real_commands(by_id):
    wanted = {
        "gpu-ecc-row-remap": "nvidia-smi -q -d ECC,ROW_REMAPPER,PAGE_RETIREMENT",
        "gpu-health-check-failures": "dcgmi diag -r 3",
        "infiniband-link-errors": "ibstat",
        "nvlink-nvswitch-errors": "nvidia-smi nvlink -e",
        "nccl-watchdog-timeout": "TORCH_NCCL_TRACE_BUFFER_SIZE",
        "job-hang-no-error": "py-spy dump",
        "cuda-illegal-memory-access": "compute-sanitizer",
        "gpu-throttling-stragglers": "nvidia-smi -q -d PERFORMANCE",
    }
    for rb_id, command in wanted.items():
        assert command in by_id[rb_id].sections["Confirm"], (rb_id, command)
    assert "perfquery" in by_id["infiniband-link-errors"].body
    assert "ibdiagnet" in by_id["infiniband-link-errors"].body
    assert "NCCL_DEBUG=INFO" in by_id["nccl-watchdog-timeout"].body


def test_categories_constant_is_valid():
    assert len(set(CATEGORIES)) == len(CATEGORIES)
    assert "other" in CATEGORIES and "xid" in CATEGORIES
    assert set(CAUSE_CLASSES) == {"hardware", "network", "software", "data", "infrastructure", "unknown"}


def test_categories_have_one_home():
    """Parsers and runbooks read the one vocabulary (incidentbot/categories.py), not copies."""
    from incidentbot import categories, signatures

    assert signatures.CATEGORIES is categories.CATEGORIES
    assert CATEGORIES is categories.CATEGORIES


# --------------------------------------------------------------------------- checker: bad files


def test_good_file_passes(tmp_path):
    write(tmp_path, "good.md", GOOD.format(id="good"))
    assert errors_for(tmp_path) == []
    [rb] = load_runbooks(tmp_path)
    assert rb.id == "good" and rb.severity == "high" and rb.last_reviewed == date(2026, 1, 15)
    assert rb.match.xid == [79] and rb.match.categories == ["xid"]
    assert set(rb.sections) == {"Symptoms", "Confirm", "Act", "Escalate"}
    assert rb.path == tmp_path / "good.md"


def test_unknown_key(tmp_path):
    p = write(tmp_path, "x.md", GOOD.format(id="x").replace('owner: "@gpu-fleet"', 'ownr: "@gpu-fleet"'))
    errs = errors_for(tmp_path)
    assert f"{p}:{line_of(p, 'ownr:')}: unknown key 'ownr'" in errs
    assert any("missing required key 'owner'" in e for e in errs)
    assert load_runbooks(tmp_path) == []


def test_unknown_match_key(tmp_path):
    p = write(tmp_path, "x.md", GOOD.format(id="x").replace("  cause_classes:", "  causes: [x]\n  cause_classes:"))
    assert f"{p}:{line_of(p, 'causes:')}: unknown key 'match.causes'" in errors_for(tmp_path)


def test_str_of_check_error():
    assert str(CheckError("runbooks/x.md", 12, "unknown key 'ownr'")) == "runbooks/x.md:12: unknown key 'ownr'"


def test_duplicate_id(tmp_path):
    write(tmp_path, "a.md", GOOD.format(id="a"))
    b = write(tmp_path, "b.md", GOOD.format(id="a"))
    errs = errors_for(tmp_path)
    line = line_of(b, "id: a")
    assert f"{b}:{line}: duplicate id 'a' (also in {tmp_path / 'a.md'})" in errs
    assert f"{b}:{line}: id 'a' does not match file name 'b.md'" in errs
    assert [rb.id for rb in load_runbooks(tmp_path)] == ["a"]


def test_id_file_mismatch(tmp_path):
    p = write(tmp_path, "wrong-name.md", GOOD.format(id="right-name"))
    assert errors_for(tmp_path) == [
        f"{p}:{line_of(p, 'id: right-name')}: id 'right-name' does not match file name 'wrong-name.md'"
    ]


def test_bad_regex(tmp_path):
    text = GOOD.format(id="x").replace("    - 'fallen off the bus'", "    - 'fallen off the bus'\n    - 'Xid ([0-9'")
    p = write(tmp_path, "x.md", text)
    errs = errors_for(tmp_path)
    assert len(errs) == 1
    assert errs[0].startswith(f"{p}:{line_of(p, 'Xid ([0-9')}: bad regex 'Xid ([0-9'")


def test_pattern_matching_no_example(tmp_path):
    text = GOOD.format(id="x").replace(
        "    - 'fallen off the bus'", "    - 'fallen off the bus'\n    - 'GSP RPC timeout'"
    )
    p = write(tmp_path, "x.md", text)
    assert errors_for(tmp_path) == [
        f"{p}:{line_of(p, 'GSP RPC timeout')}: pattern 'GSP RPC timeout' matches none of the examples"
    ]
    # an extra sample text satisfies the pattern
    assert errors_for(tmp_path, samples=["Xid 119: GSP RPC timeout on GPU 3"]) == []


def test_dead_links(tmp_path):
    write(tmp_path, "other.md", GOOD.format(id="other"))
    text = GOOD.format(id="x").replace("related: []", "related: [other, missing-one]")
    text = text.replace(
        "- Call someone.",
        "- Call someone, see [other](other.md) and [gone](gone.md#top).\n- [web](https://example.com/a.md)",
    )
    p = write(tmp_path, "x.md", text)
    errs = errors_for(tmp_path)
    assert f"{p}:{line_of(p, 'related:')}: related runbook 'missing-one' does not exist" in errs
    assert f"{p}:{line_of(p, 'gone.md')}: dead link 'gone.md#top'" in errs
    assert len(errs) == 2


def test_bad_yaml(tmp_path):
    text = GOOD.format(id="x").replace("severity: high", "severity: [high")
    p = write(tmp_path, "x.md", text)
    errs = check_runbooks(tmp_path)
    assert len(errs) == 1
    assert errs[0].path == str(p)
    assert "YAML error" in errs[0].message
    # the error points into the front matter, at or after the broken line
    assert line_of(p, "severity: [high") <= errs[0].line <= line_of(p, "related:") + 1


def test_missing_front_matter(tmp_path):
    p = write(tmp_path, "x.md", "# just markdown\n")
    assert errors_for(tmp_path) == [
        f"{p}:1: missing YAML front matter (file must start with '---' and close it with '---')"
    ]


@pytest.mark.parametrize(
    "old,new,needle,message",
    [
        ("severity: high", "severity: urgent", "severity:", "bad severity 'urgent'"),
        ("last_reviewed: 2026-01-15", "last_reviewed: 15/01/2026", "last_reviewed:", "bad last_reviewed '15/01/2026'"),
        ("categories: [xid]", "categories: [xid, gpu_melted]", "categories:", "unknown category 'gpu_melted'"),
        ("cause_classes: [hardware]", "cause_classes: [cosmic]", "cause_classes:", "unknown cause class 'cosmic'"),
        ("xid: [79]", "xid: [seventy-nine]", "xid:", "bad Xid 'seventy-nine'"),
    ],
)
def test_bad_values(tmp_path, old, new, needle, message):
    p = write(tmp_path, "x.md", GOOD.format(id="x").replace(old, new))
    errs = errors_for(tmp_path)
    assert any(e.startswith(f"{p}:{line_of(p, needle)}: {message}") for e in errs), errs


def test_missing_section(tmp_path):
    p = write(tmp_path, "x.md", GOOD.format(id="x").replace("## Escalate", "## Other"))
    errs = errors_for(tmp_path)
    assert errs == [f"{p}:{line_of(p, '# Example')}: missing section '## Escalate'"]


def test_load_skips_invalid_keeps_valid(tmp_path):
    write(tmp_path, "good.md", GOOD.format(id="good"))
    write(tmp_path, "bad.md", GOOD.format(id="bad").replace("severity: high", "severity: nope"))
    assert [rb.id for rb in load_runbooks(tmp_path)] == ["good"]


def test_main_check_ok_and_errors(tmp_path, capsys):
    assert main_check([str(RUNBOOK_DIR)]) == 0
    out = capsys.readouterr().out
    assert re.match(r"OK: \d+ runbooks", out)

    p = write(tmp_path, "x.md", GOOD.format(id="x").replace('owner: "@gpu-fleet"', 'ownr: "@gpu-fleet"'))
    assert main_check([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{p}:{line_of(p, 'ownr:')}: unknown key 'ownr'" in err


# --------------------------------------------------------------------------- matching


XID79_TEXT = "NVRM: Xid (PCI:0000:21:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus."
OOM_TEXT = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB. GPU 1 has a total capacity "
    "of 79.10 GiB of which 3.11 GiB is free."
)


def test_xid79_matches_fallen_off_bus_first(shipped):
    for kwargs in (
        dict(category="xid", cause_class="hardware", template=XID79_TEXT, text=XID79_TEXT),
        dict(category="xid", cause_class="hardware", template="GPU has fallen off the bus", xid_codes=[79]),
        dict(category="gpu_lost", cause_class="hardware", template="Xid 79"),
    ):
        matches = match_runbooks(shipped, **kwargs)
        assert matches and matches[0].runbook.id == "gpu-fallen-off-bus", [(m.id, m.reasons) for m in matches]
    reasons = match_runbooks(shipped, category="xid", cause_class="hardware", template=XID79_TEXT)[0].reasons
    assert "Xid 79" in reasons
    assert "category xid" in reasons
    assert "pattern 'fallen off the bus'" in reasons


def test_cuda_oom_does_not_match_xid79(shipped):
    matches = match_runbooks(shipped, category="cuda_oom", cause_class="hardware", template=OOM_TEXT, text=OOM_TEXT)
    ids = [m.runbook.id for m in matches]
    assert "gpu-fallen-off-bus" not in ids
    assert ids[0] == "cuda-oom"


def test_cause_class_alone_does_not_match(shipped):
    assert match_runbooks(shipped, category="other", cause_class="hardware", template="hello world") == []


def test_match_is_ranked_and_has_reasons(shipped):
    text = "CUDA error: uncorrectable ECC error encountered"
    matches = match_runbooks(shipped, category="cuda_runtime", cause_class="hardware", template=text)
    assert matches[0].runbook.id == "gpu-ecc-row-remap"
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert all(m.reasons for m in matches)


@needs_data
def test_every_exemplar_matches_a_runbook_of_its_category(shipped):
    covered = {c for rb in shipped for c in rb.match.categories}
    rows = _exemplars()
    checked = 0
    for row in rows:
        cat = row["category"]
        if cat not in covered:
            continue
        matches = match_runbooks(shipped, category=cat, cause_class="", template=row["text"], text=row["text"])
        ids_with_cat = [m.runbook.id for m in matches if cat in m.runbook.match.categories]
        assert ids_with_cat, (row["subcategory"], [m.id for m in matches])
        checked += 1
    assert checked >= 0.9 * len(rows)


@needs_data
def test_every_exemplar_category_has_a_runbook(shipped):
    covered = {c for rb in shipped for c in rb.match.categories}
    missing = {row["category"] for row in _exemplars()} - covered
    assert not missing


@needs_data
def test_exemplars_hit_patterns_not_only_categories(shipped):
    """Patterns alone (no category) should find a runbook for nearly every exemplar."""
    rows = _exemplars()
    misses = [
        row["subcategory"]
        for row in rows
        if not match_runbooks(shipped, category="", template=row["text"], text=row["text"])
    ]
    assert len(misses) <= 0.05 * len(rows), misses


# Subcategory -> runbook expected in first place (category + text).
EXPECTED_TOP = {
    "allreduce_timeout_torch1x": "nccl-watchdog-timeout",
    "watchdog_heartbeat_stuck_480s": "nccl-watchdog-timeout",
    "desync_ranks_on_different_seqnum_optype": "nccl-watchdog-timeout",
    "ncclRemoteError_IB_error12_vendor129": "infiniband-link-errors",
    "ncclInvalidUsage_duplicate_gpu_megatron": "nccl-init-connect-errors",
    "socket_connect_refused": "nccl-init-connect-errors",
    "nccl_ib_status12_vendor129_recv_ipv6_gid": "infiniband-link-errors",
    "mlx5_port_module_cable_error_high_temperature": "infiniband-link-errors",
    "ucx_transport_retry_count_exceeded": "infiniband-link-errors",
    "uncorrectable_ecc": "gpu-ecc-row-remap",
    "uncorrectable_nvlink_error": "nvlink-nvswitch-errors",
    "illegal_memory_access_moe_kernel_8x8_a100": "cuda-illegal-memory-access",
    "device_side_assert_index_out_of_bounds": "cuda-illegal-memory-access",
    "oom_new_format": "cuda-oom",
    "xid_63_row_remap": "gpu-ecc-row-remap",
    "xid_119_gsp_rpc_timeout": "gpu-gsp-timeout",
    "xid_79_plus_nvswitch_sxid_20034_cascade": "gpu-fallen-off-bus",
    "xid_13_sm_exceptions_then_xid_43": "cuda-illegal-memory-access",
    "xid_149_nvlink5_netir_link_evt_and_xid_154_recovery_action": "nvlink-nvswitch-errors",
    "xid_145_rlw_rxpipe_and_149_ber_nonfatal": "nvlink-nvswitch-errors",
    "sxid_24007_a100_hgx": "nvlink-nvswitch-errors",
    "xid_31_mmu_fault_pte": "cuda-illegal-memory-access",
    "nvidia_smi_unable_to_determine_device_handle": "gpu-fallen-off-bus",
    "slurmstepd_nvml_gpu_is_lost": "gpu-fallen-off-bus",
    "nvidia_smi_sram_uncorrectable": "gpu-ecc-row-remap",
    "dcgm_fr_imex_unhealthy_false_positive": "gpu-health-check-failures",
    "megatron_nan_in_local_grad_norm_assert": "nan-loss-spikes",
    "deepspeed_min_loss_scale_exception": "nan-loss-spikes",
    "py_spy_stack_dataloader_deadlock": "job-hang-no-error",
    "eval_hang_no_timeout_slurm_pulse": "job-hang-no-error",
    "single_lagging_rank_py_spy_gb200": "job-hang-no-error",
    "megatron_rerun_state_machine_nan_reproducible": "nan-loss-spikes",
    "deepspeed_optim_state_save_write_failed": "checkpoint-io-failures",
    "cgroup_oom_old_format_and_bus_error": "scheduler-kills",
    "shm_bus_error_then_worker_exited": "dataloader-host-oom",
    "no_space_left_on_device": "checkpoint-io-failures",
    "torch_save_io_error_fd": "checkpoint-io-failures",
    "childfailederror_sigabrt_multi_rank": "launcher-child-failed",
    "c10d_client_socket_timeout_29500": "rendezvous-failures",
    "job_cancelled_time_limit": "scheduler-kills",
    "terminated_error_exit_137": "scheduler-kills",
    "edac_ue_and_apei_pcie_mce": "host-hardware-errors",
    "pcie_aer_corrected_data_link_layer_timeout": "host-hardware-errors",
    "cgroup_cpu_oom_killed": "dataloader-host-oom",
}


@needs_data
def test_exemplars_rank_the_specific_runbook_first(shipped):
    rows = {row["subcategory"]: row for row in _exemplars()}
    wrong = {}
    for sub, expected in EXPECTED_TOP.items():
        row = rows.get(sub)
        if row is None:  # exemplar set may change; only check what exists
            continue
        matches = match_runbooks(shipped, category=row["category"], template=row["text"], text=row["text"])
        top = matches[0].runbook.id if matches else None
        if top != expected:
            wrong[sub] = (top, expected)
    assert not wrong, wrong


@needs_data
def test_xid_catalog_codes_in_runbooks_exist():
    import csv

    catalog = DATA / "xid_catalog.csv"
    if not catalog.is_file():
        pytest.skip("xid catalog not present")
    with catalog.open(encoding="utf-8") as fh:
        known = {int(r["xid"]) for r in csv.DictReader(fh)}
    for rb in load_runbooks(RUNBOOK_DIR):
        assert set(rb.match.xid) <= known, (rb.id, set(rb.match.xid) - known)


# --------------------------------------------------------------------------- summaries


def test_summarize(by_id):
    rb = by_id["gpu-fallen-off-bus"]
    s = summarize(rb, max_chars=800)
    assert len(s) <= 800
    assert rb.title in s and "critical" in s
    assert "Confirm:" in s and "Act:" in s
    assert "Drain the node now" in s
    short = summarize(rb, max_chars=120)
    assert len(short) <= 120 and short.startswith(f"*{rb.title}*")
    tiny = summarize(rb, max_chars=40)
    assert len(tiny) <= 40 and tiny.endswith("…")


def test_summarize_every_runbook(shipped):
    for rb in shipped:
        s = summarize(rb)
        assert rb.title in s
        assert s.count("• ") >= 4, rb.id


@needs_data
def test_engine_templates_hit_runbook_patterns(shipped):
    """With the signature engine's masked template (numbers -> <NUM> etc.) and its
    category, the exemplar still reaches a runbook of that category, and
    patterns alone still find a runbook for nearly all of them."""
    sig = pytest.importorskip("incidentbot.signatures")
    fingerprint = getattr(sig, "fingerprint", None)
    if fingerprint is None:
        pytest.skip("incidentbot.signatures has no fingerprint() yet")
    covered = {c for rb in shipped for c in rb.match.categories}
    rows = _exemplars()
    pattern_misses = []
    for row in rows:
        fp = fingerprint(row["text"])
        matches = match_runbooks(shipped, category=fp.category, cause_class=fp.cause_class, template=fp.template)
        if fp.category in covered:
            assert any(fp.category in m.runbook.match.categories for m in matches), row["subcategory"]
        if not match_runbooks(shipped, category="", template=fp.template):
            pattern_misses.append(row["subcategory"])
    assert len(pattern_misses) <= 0.05 * len(rows), pattern_misses


def test_cli_samples_from_a_jsonl_file(tmp_path):
    """`incidentbot runbooks check DIR --samples exemplars.jsonl`, as `make test` runs it."""
    import json as _json
    import subprocess
    import sys

    text = GOOD.format(id="x").replace(
        "    - 'fallen off the bus'", "    - 'fallen off the bus'\n    - 'GSP RPC timeout'"
    )
    write(tmp_path, "x.md", text)
    samples = tmp_path / "s.jsonl"
    samples.write_text(_json.dumps({"text": "NVRM: Xid 119: GSP RPC timeout\non GPU 3"}) + "\n")

    def check(*extra):
        return subprocess.run(
            [sys.executable, "-m", "incidentbot", "runbooks", "check", str(tmp_path), *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )

    without = check()
    assert without.returncode == 1 and "matches none of the examples" in without.stderr
    assert check("--samples", str(samples)).returncode == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    out = check("--samples", str(bad))
    assert out.returncode == 2 and f"{bad}:1:" in out.stderr


def test_summaries_are_slack_mrkdwn_not_markdown(shipped):
    from incidentbot.runbooks.summary import to_mrkdwn

    assert (
        to_mrkdwn("**Drain** it; see [ECC](gpu-ecc-row-remap.md) and [docs](https://docs.nvidia.com/x)")
        == "*Drain* it; see ECC and docs (https://docs.nvidia.com/x)"
    )
    for rb in shipped:
        text = summarize(rb)
        assert "**" not in text and not re.search(r"\]\([^)]*\)", text), (rb.id, text)
