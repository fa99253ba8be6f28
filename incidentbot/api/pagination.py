"""The opaque cursors of the paged reads (``next_cursor``): a row id, base64 without padding."""

from __future__ import annotations

import base64

from fastapi import HTTPException

__all__ = ["decode_cursor", "encode_cursor"]


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, detail="cursor is not one this service issued") from None


def encode_cursor(n: int | None) -> str | None:
    return base64.urlsafe_b64encode(str(n).encode()).decode().rstrip("=") if n is not None else None
