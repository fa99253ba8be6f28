"""Every pattern on the ingest path runs in linear time (issue 17, "Regex blow-up on ingest").

The inputs are adversarial on purpose: long runs of one character class (hex letters with no
digit, digits, word characters, spaces), alternations of the openings that detectors and maskers
look for, and separators between them. A pattern that rescans the rest of a run from every start
position costs n² on these; the old hex-token pattern took 6-9 s on ``"a" * 32768``.

How linearity is judged: the cost of a 4x longer input is compared with the shorter one in the
same process (linear ~4x, quadratic ~16x), with the best of three runs to damp noise, and the
cache is defeated by a unique suffix. This is a property, not a speed target (bench/grouping.py
--redos prints the figures).
"""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidentbot.signatures import fingerprint
from incidentbot.signatures.masking import MAX_ANALYSED, mask_line

# character classes the masking and token patterns care about
CLASSES = ["abcdef", "ABCDEF", "0123456789", "ghxyz", "_", " ", "\t", ".", ":", "/", "-", "=", "'", '"', "é"]
# openings of detectors, keyed values and maskers (an alternation of them, repeated, never closed)
OPENINGS = [
    "DataLoader worker (pid",
    "error=",
    "status ",
    "vendor err ",
    "Assertion `",
    "[Rank ",
    "pid=",
    "0x",
    "PCI:",
    "fe80:",
    "NCCL WARN ",
    "Xid (",
    "/site-packages",
    "-packages/",
    "Reason: ",
    "Exit Code: ",
    "XFS (",
    "CUDA error: ",
    "Traceback (most recent call last):",
    '  File "',
    "[",
    "<",
    "key=",
    "k='",
    "GPU-",
    "mlx5_",
    "Thread ",
    "PULSE: ",
    "grad norm: ",
    "1.",
    "12:34",
    "Jan 1 ",
    "[ ",
    "a.b.",
]

run_unit = st.builds(
    lambda chars, k, sep: chars * k + sep,
    st.sampled_from(CLASSES),
    st.integers(1, 64),
    st.sampled_from(["", " ", "\n", ",", ":", "=", ".", "/"]),
)
alternation = st.lists(st.sampled_from(OPENINGS), min_size=1, max_size=4).map("".join)
mixed = st.builds(lambda a, b: a + b, st.sampled_from(OPENINGS), st.sampled_from(CLASSES).map(lambda c: c * 40))
unit = st.one_of(st.sampled_from(CLASSES), run_unit, alternation, mixed)


def _cost(fn, unit_text: str, n: int, tag: int) -> float:
    best = float("inf")
    for rep in range(3):
        text = (unit_text * (n // len(unit_text) + 1))[:n] + f"#{tag}-{rep}-{n}"
        t0 = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - t0)
    return best


def _assert_linear(fn, unit_text: str, small_n: int) -> None:
    small = _cost(fn, unit_text, small_n, 1)
    large = _cost(fn, unit_text, 4 * small_n, 2)
    # linear ~4x; quadratic 16x must fail; tiny absolute times are noise
    assert large < max(9 * small, 0.03), (unit_text[:60], small, large)


_seen = 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unit)
def test_fingerprint_is_linear_on_adversarial_text(unit_text: str) -> None:
    global _seen
    _seen += 1
    _assert_linear(fingerprint, unit_text, MAX_ANALYSED // 4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unit)
def test_masking_is_linear_on_adversarial_lines(unit_text: str) -> None:
    _assert_linear(mask_line, unit_text, 1024)  # lines are cut at 4 KiB before masking


# Known-wrong inputs of the past: each took seconds before the patterns were made linear.
KNOWN_SLOW = [
    "a" * 32768,
    "F" * 32768,
    "ab" * 16384,
    "1" * 32768,
    "DataLoader worker (pid" * 1500,
    "/a" * 16384 + "-packages/",
]


def test_known_blow_ups_are_fast() -> None:
    for i, text in enumerate(KNOWN_SLOW):
        t0 = time.perf_counter()
        fingerprint(text + f"#{i}")
        # generous: a linear scan of 32 KiB is milliseconds; the quadratic ones took seconds
        assert time.perf_counter() - t0 < 0.5, text[:40]
