"""Data model for runbooks: constants, the Runbook record and check errors."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")

REQUIRED_KEYS: tuple[str, ...] = (
    "id",
    "title",
    "owner",
    "last_reviewed",
    "severity",
    "match",
)
OPTIONAL_KEYS: tuple[str, ...] = ("examples", "references", "related")
ALLOWED_KEYS: frozenset[str] = frozenset(REQUIRED_KEYS + OPTIONAL_KEYS)
MATCH_KEYS: frozenset[str] = frozenset({"categories", "cause_classes", "xid", "patterns"})

# Sections every runbook body must have (as "## <name>" headings).
REQUIRED_SECTIONS: tuple[str, ...] = ("Symptoms", "Confirm", "Act", "Escalate")


@dataclass(frozen=True)
class CheckError:
    """One problem found in a runbook file; str() gives 'path:line: message'."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class MatchRules:
    categories: list[str] = field(default_factory=list)
    cause_classes: list[str] = field(default_factory=list)
    xid: list[int] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    compiled: list[re.Pattern[str]] = field(default_factory=list, repr=False)

    def matching_patterns(self, *texts: str) -> list[str]:
        """Source strings of the patterns that match any of ``texts``."""
        hits: list[str] = []
        for src, rx in zip(self.patterns, self.compiled, strict=True):
            if any(t and rx.search(t) for t in texts):
                hits.append(src)
        return hits


@dataclass
class Runbook:
    id: str
    title: str
    owner: str
    last_reviewed: date
    severity: str
    match: MatchRules
    examples: list[str]
    references: list[str]
    related: list[str]
    body: str
    path: Path
    sections: dict[str, str]


@dataclass
class RunbookMatch:
    runbook: Runbook
    score: float
    reasons: list[str]

    @property
    def reason(self) -> str:
        return ", ".join(self.reasons)

    @property
    def id(self) -> str:
        return self.runbook.id


class RunbookError(Exception):
    """Raised when a caller needs a valid runbook set and it is not."""

    def __init__(self, errors: list[CheckError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors) or "invalid runbooks")
