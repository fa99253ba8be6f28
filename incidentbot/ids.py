"""Short ids people type: ``S-12`` (signature), ``H-7`` (hypothesis), ``P-3`` (poll)."""

from __future__ import annotations

import re

__all__ = ["format_id", "parse_id", "IdError"]

_PREFIX = {"S": "signature", "H": "hypothesis", "P": "poll"}
_ID = re.compile(r"^\s*([SHPshp])-?([0-9]{1,12})\s*$")  # ASCII digits only: "H-٣" is not H-3


class IdError(ValueError):
    pass


def format_id(prefix: str, n: int) -> str:
    return f"{prefix}-{n}"


def parse_id(text: str, *, expect: str | None = None) -> tuple[str, int]:
    """``"h-7"`` → ``("H", 7)``; raises IdError naming what was expected."""
    m = _ID.match(text or "")
    if not m or (expect and m.group(1).upper() != expect):
        want = f"{expect}-n ({_PREFIX[expect]})" if expect else "S-n, H-n or P-n"
        raise IdError(f"expected an id like {want}, got {text!r}")
    return m.group(1).upper(), int(m.group(2))
