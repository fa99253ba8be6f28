"""Table-driven tests of the signature engine over the shared GPU failure exemplars.

The exemplars are read by path (../shared/data/gpu-failures/exemplars.jsonl relative to the
project root); the tests that need them skip when the data is absent.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from incidentbot.signatures import (
    CATEGORIES,
    CAUSE_CLASSES,
    RULES_VERSION,
    Explanation,
    Fingerprint,
    explain,
    fingerprint,
    group,
)
from incidentbot.signatures.masking import mask_line
from incidentbot.signatures.xid import XID_TABLE, xid_info

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EXEMPLARS = DATA / "gpu-failures" / "exemplars.jsonl"


def _load() -> list[dict]:
    if not EXEMPLARS.is_file():
        return []
    return [json.loads(line) for line in EXEMPLARS.open(encoding="utf-8") if line.strip()]


ROWS = _load()
needs_data = pytest.mark.skipif(not ROWS, reason=f"exemplars not found at {EXEMPLARS}")

# Exemplars whose category we knowingly get wrong: (index) -> reason.  Kept empty/small on purpose.
KNOWN_WRONG: dict[int, str] = {}


def _ids() -> list[str]:
    return [f"{i}-{r['category']}-{r['subcategory']}" for i, r in enumerate(ROWS)] or ["none"]


# ---------------------------------------------------------------------------------------------
# perturber: rewrites numbers in the contexts that vary per occurrence

_CTX_NUM = re.compile(
    r"(\[Rank |\[rank|\brank |Rank |rank: |local_rank: |\[default|pid=|pid |pid: |PID |pid\(s\) |"
    r"SeqNum=|work: |sequence id: |NumelIn=|NumelOut=|Timeout\(ms\)=|ran for |JobId=|STEP |JOB |"
    r"Serial Number: |task |process )(\d+)"
)
_IP = re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")
_HEXADDR = re.compile(r"\b0x[0-9a-f]{6,}\b")
_CLOCK = re.compile(r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?")
_DMESG = re.compile(r"\[ *\d+\.\d+\]")
_SIZE = re.compile(r"\b\d+(?:\.\d+)? ?[MG]iB\b")
_NCCL_PFX = re.compile(r"^([\w.-]+):(\d+):(\d+) \[(\d)\]", re.M)
_PCI = re.compile(r"\b0000:([0-9a-f]{2}):00\b")
_PORT = re.compile(r"<(\d{4,5})>")


def perturb(text: str, seed: int) -> str:
    rnd = random.Random(seed)

    def num(m: re.Match) -> str:
        return m.group(1) + str(rnd.randint(1, 99999))

    text = _CTX_NUM.sub(num, text)
    text = _IP.sub(lambda m: ".".join(str(rnd.randint(1, 254)) for _ in range(4)), text)
    text = _HEXADDR.sub(lambda m: "0x" + "".join(rnd.choice("0123456789abcdef") for _ in m.group(0)[2:]), text)
    text = _CLOCK.sub(lambda m: re.sub(r"\d", lambda _: str(rnd.randint(0, 5)), m.group(0)), text)
    text = _DMESG.sub(lambda m: f"[{rnd.randint(1, 9999999)}.{rnd.randint(0, 999999):06d}]", text)
    text = _SIZE.sub(lambda m: f"{rnd.randint(1, 900)}.{rnd.randint(10, 99)} {m.group(0)[-3:]}", text)
    text = _NCCL_PFX.sub(
        lambda m: f"{m.group(1)}:{rnd.randint(100, 999999)}:{rnd.randint(100, 999999)} [{rnd.randint(0, 7)}]", text
    )
    text = _PCI.sub(lambda m: f"0000:{rnd.randint(16, 250):02x}:00", text)
    text = _PORT.sub(lambda m: f"<{rnd.randint(1024, 65000)}>", text)
    return text


# ---------------------------------------------------------------------------------------------


def test_public_api_shape() -> None:
    exemplar_cats = {
        "nccl_watchdog_timeout",
        "nccl_error",
        "nccl_warn",
        "infiniband_rdma",
        "cuda_runtime",
        "cuda_oom",
        "xid",
        "gpu_lost",
        "gpu_health_check",
        "loss_instability",
        "hang",
        "dataloader",
        "checkpoint_io",
        "launcher_elastic",
        "rendezvous_store",
        "slurm",
        "kubernetes",
        "host_hardware",
        "host_oom",
    }
    assert set(CATEGORIES) == exemplar_cats | {"python_exception", "alert", "other"}
    assert CAUSE_CLASSES == ("hardware", "network", "software", "data", "infrastructure", "unknown")
    assert isinstance(RULES_VERSION, str) and RULES_VERSION
    fp = fingerprint("RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB")
    assert isinstance(fp, Fingerprint)
    assert re.fullmatch(r"[0-9a-f]{32}", fp.key)
    assert fp.detail("error") == "cuda_oom" and fp.detail("nope") is None
    with pytest.raises(Exception):
        fp.key = "x"  # type: ignore[misc]
    ex = explain("RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB")
    assert isinstance(ex, Explanation) and ex.fingerprint == fp and ex.parser == fp.parser
    assert ("SIZE", "20.00 MiB") in ex.masked


@needs_data
@pytest.mark.parametrize("idx", range(len(ROWS)), ids=_ids()[: len(ROWS)])
def test_exemplar_category_title_and_perturbation(idx: int) -> None:
    row = ROWS[idx]
    fp = fingerprint(row["text"])
    if idx in KNOWN_WRONG:  # pinned as wrong; fails once fixed so the entry gets removed
        assert fp.category != row["category"], f"fixed ({KNOWN_WRONG[idx]}): drop it from KNOWN_WRONG"
        return
    assert fp.category == row["category"], (fp.title, fp.parser)
    assert fp.cause_class in CAUSE_CLASSES
    # a sensible title: non-empty, bounded, without the rank/pid/host values of this occurrence
    assert fp.title and len(fp.title) <= 160
    ex = explain(row["text"])
    title_tokens = set(re.findall(r"[\w.-]+", fp.title))
    for kind, value in ex.masked:
        if kind in ("RANK", "PID", "TID", "HOST", "IP", "SEQ") and len(value) >= 2:
            assert value.strip("'") not in title_tokens, (kind, value, fp.title)
    assert ex.reasons and ex.fingerprint.key == fp.key
    # the variable parts never change the fingerprint
    for seed in range(3):
        p = perturb(row["text"], seed * 7919 + idx)
        fp2 = fingerprint(p)
        assert fp2.key == fp.key, (seed, p[:400])
        assert fp2.category == fp.category


@needs_data
def test_perturber_really_changes_text() -> None:
    changed = sum(perturb(r["text"], 1) != r["text"] for r in ROWS)
    assert changed >= len(ROWS) * 0.6


@needs_data
def test_different_categories_never_share_a_fingerprint() -> None:
    seen: dict[str, str] = {}
    for r in ROWS:
        fp = fingerprint(r["text"])
        assert seen.setdefault(fp.key, fp.category) == fp.category


@needs_data
def test_expected_groupings_within_categories() -> None:
    by_sub = {r["subcategory"]: fingerprint(r["text"]) for r in ROWS}
    ooms = [fp for s, fp in by_sub.items() if fp.category == "cuda_oom"]
    assert len(ooms) == 3 and len({fp.key for fp in ooms}) == 1  # all historical wordings: one mode
    assert by_sub["allreduce_timeout_torch1x"].key == by_sub["allreduce_timeout_pg_guid_format"].key
    assert by_sub["allreduce_timeout_torch1x"].key != by_sub["reduce_scatter_timeout_fsdp"].key
    assert by_sub["worker_killed_sigterm"].key != by_sub["worker_killed_segfault"].key
    assert by_sub["xid_79_plus_nvswitch_sxid_20034_cascade"].detail("xid") == "79"
    assert by_sub["xid_13_illegal_instruction_then_xid_109_ctx_switch_timeout"].detail("xid") == "109"


def test_several_ranks_fold_into_one_failure() -> None:
    line = (
        "[rank{r}]:[E1206 18:44:12.7152987{r} ProcessGroupNCCL.cpp:607] [Rank {r}] Watchdog caught collective "
        "operation timeout: WorkNCCL(SeqNum=7753, OpType=ALLREDUCE, NumelIn=5449, NumelOut=6812, "
        "Timeout(ms)=600000) ran for 60006{r} milliseconds before timing out."
    )
    one = fingerprint(line.format(r=0))
    many = fingerprint("\n".join(line.format(r=r) for r in range(8)))
    assert one.key == many.key
    assert one.title == "NCCL watchdog timeout in ALLREDUCE"
    assert one.detail("op") == "ALLREDUCE"
    assert "8 ranks' lines folded into one" in " ".join(explain("\n".join(line.format(r=r) for r in range(8))).reasons)
    other_op = fingerprint(line.format(r=0).replace("ALLREDUCE", "BROADCAST"))
    assert other_op.key != one.key


def test_illegal_memory_access_inside_watchdog_is_cuda_runtime() -> None:
    t = (
        "[rank2]:[E626 23:10:17.921506443 ProcessGroupNCCL.cpp:1896] [PG ID 2 PG GUID 3 Rank 2] Process group "
        "watchdog thread terminated with exception: CUDA error: an illegal memory access was encountered"
    )
    fp = fingerprint(t)
    assert fp.category == "cuda_runtime" and fp.detail("error") == "illegal_memory_access"


def test_xid_table_and_parser() -> None:
    assert len(XID_TABLE) >= 100
    assert xid_info(79).cause_class == "hardware" and xid_info(79).severity == "critical"
    assert xid_info(13).cause_class == "software"
    assert xid_info(99999).mnemonic == "UNKNOWN"
    fp = fingerprint("NVRM: Xid (PCI:0000:3b:00): 48, pid=1234, name=python, An uncorrectable double bit error")
    assert fp.category == "xid" and fp.detail("xid") == "48" and fp.cause_class == "hardware"
    assert fp.title.startswith("Xid 48: ")
    fp2 = fingerprint("NVRM: Xid (PCI:0000:af:00): 48, pid=99, name=torchrun, An uncorrectable double bit error")
    assert fp2.key == fp.key


# ---------------------------------------------------------------------------------------------
# tracebacks

TB = """Traceback (most recent call last):
  File "/home/alice/run-{run}/train.py", line {l1}, in <module>
    main()
  File "/home/alice/run-{run}/train.py", line {l2}, in {fn}
    out = model(batch)
  File "/opt/venv/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1501, in _call_impl
    return forward_call(*args, **kwargs)
ValueError: expected input of size {n} but got {m}
"""


def test_traceback_groups_on_type_message_and_app_frames() -> None:
    a = fingerprint(TB.format(run=1, l1=10, l2=20, fn="forward", n=512, m=256))
    b = fingerprint(TB.format(run=7, l1=12, l2=29, fn="forward", n=1024, m=3))
    c = fingerprint(TB.format(run=1, l1=10, l2=20, fn="evaluate", n=512, m=256))
    assert a.category == "python_exception" and a.parser == "traceback"
    assert a.key == b.key  # line numbers, run folders and numbers ignored
    assert a.key != c.key  # a different in-app function is a different signature
    assert a.title == "ValueError in train.py:forward"
    assert a.detail("exception") == "ValueError"
    assert a.cause_class == "software"


def test_chained_traceback_uses_last_exception_and_keeps_chain() -> None:
    t = (
        "Traceback (most recent call last):\n  File \"app.py\", line 3, in load\n    d[k]\nKeyError: 'step'\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        'Traceback (most recent call last):\n  File "app.py", line 9, in run\n    load()\n'
        "RuntimeError: could not load state\n"
    )
    fp = fingerprint(t)
    assert fp.detail("exception") == "RuntimeError"
    assert fp.detail("chained_from") == "KeyError"
    assert fp.title == "RuntimeError in app.py:run"


def test_alert_and_other() -> None:
    a = fingerprint("[FIRING:3] GPUHighTemperature node=gpu-17 gpu=3 value=91")
    b = fingerprint("[FIRING:1] GPUHighTemperature node=gpu-02 gpu=5 value=95")
    assert a.category == "alert" and a.key == b.key and a.detail("alertname") == "GPUHighTemperature"
    o1 = fingerprint("job 1234 finished in 35 s on node 17")
    o2 = fingerprint("job 98 finished in 3 s on node 2")
    assert o1.category == "other" and o1.parser == "template" and o1.key == o2.key
    assert fingerprint("something completely different").key != o1.key


# ---------------------------------------------------------------------------------------------
# normaliser table: input line -> expected masked form

NORMALISER_CASES: list[tuple[str, str]] = [
    (
        "[E1206 18:44:12.715298746 ProcessGroupNCCL.cpp:607] [Rank 0] x",
        "[<TS> ProcessGroupNCCL.cpp:<NUM>] [Rank <RANK>] x",
    ),
    (
        "[6781741.548768] NVRM: Xid (PCI:0000:91:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
        "<TS> NVRM: Xid (<PCI>): <NUM>, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
    ),
    ("NVRM: GPU at PCI:0000:9b:00: GPU-509665ad-b600-ac93-3616-d754b23d636d", "NVRM: GPU at <PCI>: <UUID>"),
    (
        "Got completion from peer 10.216.210.236<54862> with status=12",
        "Got completion from peer <IP> with status=<NUM>",
    ),
    ("localGid fd00:1148:9000:5000:4:200:3:ff22 x", "localGid <GID> x"),
    ("peer fe80::966d:ae03:8b:df78%ib0<53249>", "peer <GID><<NUM>>"),
    (
        "r11i6n2:486514:486651 [1] include/socket.h:403 NCCL WARN Connect failed",
        "<HOST>:<PID>:<TID> [<DEV>] include/socket.h:<NUM> NCCL WARN Connect failed",
    ),
    (
        "Tried to allocate 304.00 MiB (GPU 0; 8.00 GiB total capacity",
        "Tried to allocate <SIZE> (GPU <NUM>; <SIZE> total capacity",
    ),
    (
        "DataLoader worker (pid 8102) is killed by signal: Terminated.",
        "DataLoader worker (pid <PID>) is killed by signal: Terminated.",
    ),
    ("[2023-04-28 06:51:29,903] [INFO] x", "[<TS>] [INFO] x"),
    ("Fri Aug 11 12:31:45 2023[1,0]<stdout>: y", "<TS>[<NUM>,<NUM>]<stdout>: y"),
    ("Started: Tue, 29 Apr 2025 13:43:32 +0800", "Started: <TS>"),
    (
        "Feb 14 05:03:41 gpu-node-1 kernel: mlx5_core 0000:ab:00.0 mlx5_5: Port: 1 Link INIT",
        "<TS> <HOST> kernel: mlx5_core <PCI> mlx5_5: Port: <NUM> Link INIT",
    ),
    (
        "frame #0: c10::Error::Error + 0x96 (0x7f0c4756c1b6 in /home/u/miniconda3/envs/x/lib/python3.11/site-packages/torch/lib/libc10.so)",
        "frame #<NUM>: c10::Error::Error + <HEX> (<HEX> in <PATH>/site-packages/torch/lib/libc10.so)",
    ),
    (
        'File "/opt/venv/lib/python3.10/site-packages/torch/x.py", line 3',
        'File "<PATH>/site-packages/torch/x.py", line <NUM>',
    ),
    ("ran for 1802212 milliseconds before timing out", "ran for <DURATION> before timing out"),
    ("[c10d] The client socket has timed out after 900s", "[c10d] The client socket has timed out after <DURATION>"),
    ("[rank3]: RuntimeError: boom", "RuntimeError: boom"),
    ("saved /tmp/job-1234/ckpt.pt", "saved <PATH>"),
]

# normaliser cases we knowingly get wrong: input -> reason
KNOWN_WRONG_MASKS: dict[str, str] = {
    "remoteGidsfd00:1148:9000:5000:4:200:3:ff1f": "GID glued to a word is not recognised as a GID",
}


@pytest.mark.parametrize("line,expected", NORMALISER_CASES)
def test_normaliser(line: str, expected: str) -> None:
    assert mask_line(line) == expected


@pytest.mark.parametrize("line", sorted(KNOWN_WRONG_MASKS))
def test_normaliser_known_wrong(line: str) -> None:
    # Pins the current wrong output instead of raising xfail: the day the normaliser gets it right
    # this fails, and the case moves into NORMALISER_CASES.
    assert "<GID>" not in mask_line(line), (
        f"now masked correctly ({KNOWN_WRONG_MASKS[line]}): move it to NORMALISER_CASES"
    )


def test_group_api_small() -> None:
    names = ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt"]
    lines = [f"open file {n} took {i} ms" for i, n in enumerate(names)] + ["close socket 17", "close socket 9"]
    ids = group(lines)
    assert len(set(ids[:6])) == 1 and ids[6] == ids[7] and ids[0] != ids[6]
    # few distinct word values in a column are constants of separate templates
    ids2 = group(["state changed to RUNNING", "state changed to STOPPED"] * 3)
    assert ids2[0] != ids2[1] and ids2[0] == ids2[2]


# Numerical-instability lines as training frameworks print them: text -> the kind it is filed as.
LOSS_LINES = [
    (
        " iteration     1200/  500000 | lm loss: nan | loss scale: 1.0 | grad norm: nan | number of nan iterations:   1 |",
        "nan_grad_norm",
    ),
    (
        " iteration     1200/  500000 | lm loss: nan | loss scale: 1.0 | grad norm: 3.2 | number of nan iterations:   1 |",
        "nan_result",
    ),
    (
        " iteration     1200/  500000 | lm loss: 9.8E+01 | grad norm: 1843.2 | number of nan iterations:   0 |",
        "grad_norm_spike",
    ),
    ("WARNING: loss spike detected at step 48211: loss 11.82 > 3.0 x running mean 2.41", "loss_spike"),
    ("Found inf or nan in gradients; skipping step 4821, reducing loss scale to 32768.0", "overflow"),
    ("Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 32768.0", "overflow"),
    ("step 100: loss=nan", "nan_result"),
    # a paste of progress lines whose grad norm grew tenfold
    (" iteration 10/ 100 | lm loss: 2.1 | grad norm: 0.40 |\n iteration 11/ 100 | lm loss: 2.3 | grad norm: 9.7 |", "grad_norm_spike"),
]
NOT_LOSS = [
    "Finance report: nanoseconds spent 12",
    "training loss: 2.31 after warmup",
    # known wrong before 2026.12-4: a Megatron progress line with an ordinary grad norm was filed as
    # a "Loss / grad-norm spike" (every progress line of a fleet, 90% of the simulator's noise
    # inside hypotheses); it is progress
    "[default0]: iteration     1436/    16313 | elapsed time per iteration (s): 1.82 | learning rate: 2.991E-04 "
    "| lm loss: 1.909606E+00 | grad norm: 0.191 | TFLOPs: 401.61 |",
    " iteration 10/ 100 | lm loss: 2.1 | grad norm: 0.40 |\n iteration 11/ 100 | lm loss: 2.0 | grad norm: 0.38 |",
]


@pytest.mark.parametrize("line,kind", LOSS_LINES)
def test_loss_lines(line: str, kind: str) -> None:
    fp = fingerprint(line)
    assert (fp.category, fp.detail("kind")) == ("loss_instability", kind), fp.title


@pytest.mark.parametrize("line", NOT_LOSS)
def test_not_loss_lines(line: str) -> None:
    assert fingerprint(line).category != "loss_instability"


IB_EVENT_LINES = [
    "Feb 14 05:03:41 gpu-node-1 kernel: mlx5_core 0000:ab:00.0 mlx5_5: Port: 1 Link INIT",
    "<6>[    2.962781] mlx5_core 0000:41:00.1: Port module event: module 1, Cable unplug",
    "mlx5_core: Port 1 link down",
]
# known wrong before 2026.12-3: NCCL's INFO list of the NICs it uses, logged by every job's start,
# was filed as a Mellanox/IB event (and recurred at each restart's resume step as "bad data")
NOT_IB_EVENT = [
    "10.11.32.15:235221:235221 [4] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB,[1]mlx5_1:1/IB ; OOB eth0:10.11.32.15<0>",
    "node01:1234:1234 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/RoCE [1]mlx5_3:1/RoCE ; OOB ens1f0:10.0.0.1<0>",
]


@pytest.mark.parametrize("line", IB_EVENT_LINES)
def test_ib_event_lines(line: str) -> None:
    assert fingerprint(line).category == "infiniband_rdma"


@pytest.mark.parametrize("line", NOT_IB_EVENT)
def test_nccl_info_nic_list_is_no_ib_event(line: str) -> None:
    assert fingerprint(line).category != "infiniband_rdma"
