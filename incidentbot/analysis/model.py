"""Plain data in and out of the analysis. No behaviour beyond construction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["EventRecord", "SignatureInfo", "Constraints", "Proposal", "Topology", "PROPOSAL_KINDS"]

# What a Proposal's ``kind`` can be, and where each comes from: a component's kind (the evidence
# rules: localisation.py, onset.py, pooled.py, recurrence.py), storm (precedence.py), human_merge
# (merging.py: people said "together"), host_incident and node_failure (incidents.py: a job's failure
# begun on one host, or by a node the scheduler names in a node list going down), and what coverage.py
# proposes for what no rule explained.
PROPOSAL_KINDS: tuple[str, ...] = (
    "localised_hardware",
    "switch",
    "regression",
    "data_step",
    "storm",
    "human_merge",
    "host_incident",
    "node_failure",
    "unexplained",
    "storm_unexplained",
    "shared_component",
    "scheduler",
)

Topology = Mapping[str, str]
"""host -> switch (leaf, rack): optional; sharpens localisation to a switch."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    signature_id: int
    job_id: str
    time: float  # epoch seconds
    host: str | None = None
    gpu: str | None = None
    rank: int | None = None
    step: int | None = None
    cluster: str | None = None
    code_version: str | None = None
    versions: tuple[tuple[str, str], ...] = ()  # sorted (name, version)
    # How many stored events this record stands for. Analysis reads occurrence aggregates kept at
    # ingest (one row per signature x job x host x version set x time bucket), so a 100,000-rank
    # storm is a few thousand records; every count the rules make weighs a record by this.
    count: int = 1
    run: str | None = None  # the run a job belongs to, when the reporter says (attributes.run_id)
    attempt: int | None = None  # the restart attempt within the run, when known
    # the launcher's job name (SLURM's --job-name, attributes.job_name): jobs of one name that ran
    # one after another are the attempts of one run (lineage.sequential_runs)
    job_name: str | None = None


@dataclass(frozen=True, slots=True)
class SignatureInfo:
    id: int
    title: str
    category: str = "unknown"
    cause_class: str = "unknown"  # what the text itself says: hardware|network|software|data|infrastructure|unknown
    details: tuple[tuple[str, str], ...] = ()  # e.g. (("xid", "79"),)


@dataclass(frozen=True)
class Constraints:
    """Decisions people made; the analysis obeys them."""

    together: tuple[frozenset[int], ...] = ()  # signature groups that must be in one hypothesis (a human merge)
    apart: tuple[frozenset[int], ...] = ()  # signature groups whose members must not share a hypothesis (a split)


@dataclass
class Proposal:
    """One hypothesis: a cause that explains a set of events.

    ``confidence`` is an evidence-strength score in 0..1, meant to be read as "how likely the
    grouping and the cause class are right". It is a monotone map of the strongest test behind
    the hypothesis (adjusted p-value p: confidence = s/(s+3) with s = -log10 p, so p=1e-3 gives
    0.5, p=1e-9 gives 0.75, p=1e-30 gives 0.91), multiplied by 0.8 when the text's own known
    meaning disagrees with the cause class inferred from the pattern, capped at 0.97. It is not
    yet calibrated on resolved incidents: the poll/resolution history is meant to do that. On
    the simulator (``bench/diagnosis.py``, 15 scenarios, ~200 hypotheses) it is conservative:
    93% of hypotheses under 0.5 and 92-100% of those above were right (events match one true
    cause with F1 >= 0.8 and the cause class agrees).
    """

    title: str
    cause_class: str
    scope: dict[str, list[str]]
    confidence: float
    evidence: list[str]
    signature_ids: list[int]
    event_ids: list[int]
    kind: str  # one of PROPOSAL_KINDS
    key: str = ""  # a stable text key of the evidence profile (e.g. "host:c1-gpu0007"), for reconciliation
