"""NVIDIA Xid table shipped with the package (``xid_catalog.csv``).

Derived from NVIDIA's public Xid catalog; the meanings are short restatements in our own words,
with a cause class (hardware / software / network / unknown) and a severity
(critical > high > medium > low).  Loaded once at import from the package's own data file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

__all__ = ["XidInfo", "XID_TABLE", "xid_info", "SEVERITY_RANK"]

SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}


@dataclass(frozen=True, slots=True)
class XidInfo:
    code: int
    mnemonic: str
    meaning: str
    cause_class: str
    severity: str


def _load() -> dict[int, XidInfo]:
    table: dict[int, XidInfo] = {}
    path = Path(__file__).with_name("xid_catalog.csv")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                code = int(row["xid"])
                table[code] = XidInfo(code, row["mnemonic"], row["meaning"], row["cause_class"], row["severity"])
    except OSError:  # pragma: no cover - broken install; parsers still work without meanings
        pass
    return table


XID_TABLE: dict[int, XidInfo] = _load()


def xid_info(code: int) -> XidInfo:
    info = XID_TABLE.get(code)
    if info is None:
        return XidInfo(code, "UNKNOWN", "Xid code not in our table", "unknown", "medium")
    return info
