"""Storm attribution: the window is the watchdog's own timeout when the text states it."""

import pytest

from incidentbot.analysis import Settings, analyze
from incidentbot.analysis.synth import Fleet

IB, WATCHDOG = 40, 41


def fleet(watchdog_title, lag_s, n_storms=3):
    f = Fleet()
    f.sig(IB, "NET/IB completion error", "infiniband_rdma", "network")
    f.sig(WATCHDOG, watchdog_title, "nccl_watchdog_timeout", "unknown")
    hs = [f"h{i:02d}" for i in range(8)]
    f.job("j1", hs, 40_000)
    f.job("j2", [f"g{i:02d}" for i in range(8)], 40_000)
    for k in range(n_storms):
        t = f.jobs["j1"].start + 20_000 * (k + 1)
        f.event(IB, "j1", None, hs[k % 2], rank=3, at=t)
        for r in range(64):
            f.event(WATCHDOG, "j1", None, hs[r // 8], rank=r, at=t + lag_s + r * 0.01)
    return f


CASES = [  # (watchdog text, lag of the storm after the precursor, attributed?)
    ("Watchdog caught collective operation timeout: Timeout(ms)=1800000", 1_700, True),
    ("Watchdog caught collective operation timeout: Timeout(ms)=600000", 1_700, False),
    ("Watchdog caught collective operation timeout: Timeout(ms)=600000", 590, True),
    ("NCCL watchdog timeout", 1_700, True),  # unstated: the default, 30 min
]


@pytest.mark.parametrize("title,lag,attributed", CASES)
def test_window_from_the_watchdog_text(title, lag, attributed):
    f = fleet(title, lag)
    props = analyze(f.events, f.signatures)
    (holder,) = [p for p in props if set(p.event_ids) & f.ids(WATCHDOG)]
    if attributed:
        assert IB in holder.signature_ids and holder.cause_class == "network"
        assert any("3 of 3 storms" in line for line in holder.evidence)
    else:
        assert holder.kind == "storm_unexplained" and IB not in holder.signature_ids


def test_default_window_is_a_setting():
    f = fleet("NCCL watchdog timeout", 1_700)
    props = analyze(f.events, f.signatures, settings=Settings(watchdog_timeout_s=600.0))
    (holder,) = [p for p in props if set(p.event_ids) & f.ids(WATCHDOG)]
    assert holder.kind == "storm_unexplained"
