"""Hypothesis analysis: pure functions from events (with signature ids) to proposed causes.

    from incidentbot.analysis import EventRecord, SignatureInfo, Constraints, Proposal, analyze, Topology

No database, no network, no clock: plain dataclasses in, plain dataclasses out. See
``engine.py`` for the evidence rules and ``Proposal`` for what ``confidence`` means.
"""

from .engine import analyze
from .model import PROPOSAL_KINDS, Constraints, EventRecord, Proposal, SignatureInfo, Topology
from .settings import Settings
from .versions import version_key

__all__ = [
    "analyze",
    "Settings",
    "EventRecord",
    "SignatureInfo",
    "Constraints",
    "Proposal",
    "PROPOSAL_KINDS",
    "Topology",
    "version_key",
]
