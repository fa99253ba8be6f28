"""Runbooks: parse, validate and match Markdown runbooks with YAML front matter.

Pure library: every function reads from the directory it is given.
"""

from incidentbot.categories import CATEGORIES
from incidentbot.causes import CAUSE_CLASSES

from .loader import check_runbooks, load_runbooks, load_with_errors, parse_file, parse_sections
from .match import match_runbooks, xids_in_text
from .model import (
    SEVERITIES,
    CheckError,
    MatchRules,
    Runbook,
    RunbookError,
    RunbookMatch,
)
from .summary import summarize

__all__ = [
    "CATEGORIES",
    "CAUSE_CLASSES",
    "SEVERITIES",
    "CheckError",
    "MatchRules",
    "Runbook",
    "RunbookError",
    "RunbookMatch",
    "check_runbooks",
    "load_runbooks",
    "load_with_errors",
    "match_runbooks",
    "parse_file",
    "parse_sections",
    "summarize",
    "xids_in_text",
]
