"""Property tests: never raises, roughly linear time, deterministic across processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidentbot.signatures import CATEGORIES, CAUSE_CLASSES, explain, fingerprint, group
from incidentbot.signatures.masking import MAX_ANALYSED

ROOT = Path(__file__).resolve().parents[1]

any_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=400)
loggy = st.lists(
    st.sampled_from(
        [
            "[Rank ",
            "] ",
            "Watchdog caught collective operation timeout",
            "OpType=",
            "ALLREDUCE",
            "NVRM: Xid (",
            "PCI:0000:",
            "): ",
            "79",
            "CUDA error: ",
            "Traceback (most recent call last):\n",
            '  File "',
            '", line ',
            ", in ",
            "\n",
            "ValueError: ",
            "0x",
            "ff",
            ":",
            "::",
            "1.2.3.4",
            "<",
            ">",
            "NCCL WARN ",
            "pid=",
            "\x00",
            "\ud800",
            "é",
            " ",
            "`",
            "Assertion `",
            "` failed",
            "(",
            ")",
            "[",
            "]",
            "=",
            "12",
            "34.5 MiB",
            "/tmp/x",
            "During handling of the above exception",
            "Killed",
            "alertname=",
            "[FIRING:2] ",
        ]
    ),
    max_size=60,
).map("".join)


def _check(fp) -> None:
    assert fp.category in CATEGORIES
    assert fp.cause_class in CAUSE_CLASSES
    assert len(fp.key) == 32
    assert isinstance(fp.title, str) and fp.title


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_text)
def test_never_raises_on_any_unicode(text: str) -> None:
    _check(fingerprint(text))
    ex = explain(text)
    assert ex.fingerprint.key == fingerprint(text).key


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(loggy)
def test_never_raises_on_log_like_text(text: str) -> None:
    _check(fingerprint(text))
    assert explain(text).fingerprint.key == fingerprint(text).key


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(any_text, loggy), max_size=30))
def test_group_never_raises(texts: list[str]) -> None:
    ids = group(texts)
    assert len(ids) == len(texts)
    assert ids == group(texts)


def test_non_str_and_huge_inputs() -> None:
    _check(fingerprint(None))  # type: ignore[arg-type]
    _check(fingerprint(b"bytes"))  # type: ignore[arg-type]
    big_line = "x" * 65536
    t0 = time.perf_counter()
    for t in (
        big_line,
        "1" * 65536,
        "a:" * 32768,
        "\x00" * 65536,
        "0x" * 32768,
        "Assertion `" * 6000,
        '  File "' * 8000,
        "[Rank " * 10000,
        " " * 65536,
        "\ud800" * 65536,
        "NCCL WARN " * 6000 + "\n",
    ):
        _check(fingerprint(t))
        _check(fingerprint(t * 20))  # > MAX_ANALYSED: only the head is analysed
    assert time.perf_counter() - t0 < 10


ADVERSARIAL = ["a:", "1.", "0x", " ", "ab ", "Assertion `", "[", "fe80::", "1:2:", "=", "(", "`", '"', "-1", "\n"]


@pytest.mark.parametrize("unit", ADVERSARIAL)
def test_roughly_linear_time(unit: str) -> None:
    def cost(n: int) -> float:
        best = float("inf")
        for rep in range(3):
            text = unit * (n // len(unit)) + f"#{rep}-{n}"  # unique: defeat the cache
            t0 = time.perf_counter()
            fingerprint(text)
            best = min(best, time.perf_counter() - t0)
        return best

    small = cost(4000)
    large = cost(16000)  # 4x the input
    # linear would be ~4x; allow generous noise, but quadratic (16x) must fail
    assert large < max(12 * small, 0.02), (unit, small, large)
    assert cost(MAX_ANALYSED) < 2.0


SAMPLES = [
    "[Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=5, OpType=ALLREDUCE, Timeout(ms)=600000)",
    "NVRM: Xid (PCI:0000:91:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
    "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "something else 42 happened at 0xdeadbeef",
    'Traceback (most recent call last):\n  File "t.py", line 1, in f\nKeyError: 3',
]


def test_deterministic_across_processes() -> None:
    code = (
        "import json,sys; from incidentbot.signatures import fingerprint; "
        "print(json.dumps([fingerprint(t).key for t in json.loads(sys.stdin.read())]))"
    )
    keys = [fingerprint(t).key for t in SAMPLES]
    for seed in ("0", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(SAMPLES),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        )
        assert json.loads(out.stdout) == keys


EXEMPLARS = ROOT.parent / "shared" / "data" / "gpu-failures" / "exemplars.jsonl"


@pytest.mark.skipif(not EXEMPLARS.exists(), reason="needs ../shared/data/gpu-failures/exemplars.jsonl")
def test_shape_cache_agrees_with_a_full_parse() -> None:
    """The shape cache answers for every text of a shape (numbers of any value, and of any width
    in the same width class) after learning from two of them: its answer must be the one a full
    parse gives, for real failure texts with their numbers rewritten."""
    import random
    import re

    from incidentbot.signatures import _build

    rng = random.Random(11)

    def rewrite(m: re.Match) -> str:
        n = len(m.group())
        width = n if n == 4 or n > 9 else rng.randint(1, 3) if n <= 3 else rng.randint(5, 9)
        return str(rng.randrange(10 ** (width - 1) if width > 1 else 0, 10**width)) if rng.random() < 0.6 else m.group()

    texts = [json.loads(line)["text"] for line in EXEMPLARS.open(encoding="utf-8")]
    checked = 0
    for text in texts:
        variants = [
            text + f"\n[rank{rng.randrange(10 ** rng.randint(1, 6))}] pid {rng.randrange(10 ** rng.randint(1, 7))}"
            for _ in range(6)
        ] + [re.sub(r"\d+", rewrite, text) for _ in range(40)]
        for v in variants:
            assert fingerprint(v).key == _build(v, False)[0].key, v[:300]
            checked += 1
    assert checked == 46 * len(texts)
