"""Every Proposal.kind the analysis produces is one PROPOSAL_KINDS declares, and each declared one is
produced somewhere (no dead kinds): the declared tuple and the code cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from incidentbot.analysis import PROPOSAL_KINDS, analyze
from incidentbot.simulate import simulate, to_records

ANALYSIS = Path(__file__).resolve().parents[1] / "incidentbot" / "analysis"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_simulated_incidents_get_only_declared_kinds(seed):
    recs, sigs, _ = to_records(simulate(seed, size="small"))
    kinds = {p.kind for p in analyze(recs, sigs)}
    assert kinds and kinds <= set(PROPOSAL_KINDS), kinds - set(PROPOSAL_KINDS)


@pytest.mark.parametrize("kind", PROPOSAL_KINDS)
def test_each_declared_kind_is_produced_in_the_analysis_code(kind):
    source = "\n".join(p.read_text() for p in ANALYSIS.glob("*.py") if p.name != "model.py")
    # kind="x" (coverage), kind = "x" (hypothesis.py) or a component's kind, Component(s, "x", ...)
    produced = re.search(rf'kind\s*=\s*"{kind}"|Component\(\s*\w+,\s*"{kind}"', source)
    assert produced, f"{kind} is declared but nothing in analysis/ produces it"


@pytest.mark.parametrize("kind", ["leak", "storage", "hang"])  # the simulator's cause kinds, not proposals'
def test_the_simulators_own_cause_kinds_are_not_proposal_kinds(kind):
    assert kind not in PROPOSAL_KINDS
