"""The cause classes a failure can be put in, one vocabulary for the whole package: the parsers
(``signatures/``) give each signature one, runbooks name the ones they serve (``causes:``) and
hypotheses carry one. A leaf module, so ``runbooks/`` stays importable without the parsers."""

from __future__ import annotations

__all__ = ["CAUSE_CLASSES"]

CAUSE_CLASSES: tuple[str, ...] = ("hardware", "network", "software", "data", "infrastructure", "unknown")
