"""Every threshold of the analysis, in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    burst_gap_s: float = 30.0  # events of one signature in one job closer than this are one occurrence
    storm_min_events: int = 8
    storm_min_hosts: int = 3
    data_min_repeats: int = 3  # same (job, step) failing in this many separate occurrences
    alpha: float = 1e-3  # family-wise, after Bonferroni
    alpha_known: float = 1e-2  # when the text's known meaning (hardware/network) agrees with localisation
    min_localised: int = 3
    min_localised_known: int = 2
    min_onset: int = 5  # occurrences needed before an onset is claimed
    alpha_onset: float = 5e-3  # family-wise over all version dimensions and cut points
    onset_stray_frac: float = 0.05  # tolerated share of occurrences outside the onset versions
    onset_stray_of_expected: float = 0.1  # ... and at most this share of what the rate would predict there
    precursor_window_s: float = 900.0  # a watchdog fires ~600 s after the hang starts
    cooccur_window_s: float = 60.0
    cooccur_frac: float = 0.7
    rank0_frac: float = 0.9
    nodelist_limit: int = 4096  # a SLURM node list in the host field expands to at most this many names


DEFAULT = Settings()


