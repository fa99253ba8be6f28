"""Modals: the resolution form."""

from __future__ import annotations

from incidentbot.blocks import cut, plain

__all__ = ["resolve_modal", "read_resolution", "RESOLVE_CALLBACK"]

RESOLVE_CALLBACK = "ib:resolve_modal"


def _input(
    block_id: str, label: str, *, placeholder: str, optional: bool, multiline: bool = False, max_length: int = 2000
) -> dict:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": label},
        "element": {
            "type": "plain_text_input",
            "action_id": "value",
            "multiline": multiline,
            "max_length": max_length,
            "placeholder": {"type": "plain_text", "text": placeholder},
        },
    }


def resolve_modal(hid: int, title: str) -> dict:
    return {
        "type": "modal",
        "callback_id": RESOLVE_CALLBACK,
        "private_metadata": f"H-{hid}",
        "title": {"type": "plain_text", "text": cut(f"Resolve H-{hid}", 24)},
        "submit": {"type": "plain_text", "text": "Resolve"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "plain_text", "text": cut(plain(title), 2900)}},
            _input(
                "cause",
                "Cause",
                placeholder="What actually caused it (e.g. torch.sum miscomputes on bf16 > 2^24 elements)",
                optional=False,
                multiline=True,
            ),
            _input(
                "fix",
                "Fix",
                placeholder="What fixed it (e.g. pinned torch 2.3.1, drained host c2)",
                optional=True,
                multiline=True,
            ),
            _input("link", "Link", placeholder="PR, upstream issue or postmortem URL", optional=True, max_length=500),
            _input(
                "fixed_in",
                "Fixed in version",
                placeholder="v1.5.2, or torch=2.4.1 for a framework version",
                optional=True,
                max_length=128,
            ),
        ],
    }


def read_resolution(view: dict) -> tuple[int, dict[str, str], dict[str, str]]:
    """Parse a submitted resolution form → (hypothesis id, values, errors by block id)."""
    hid = int(str(view.get("private_metadata", "H-0")).split("-", 1)[1])
    values = {}
    for block_id, actions in (view.get("state", {}).get("values") or {}).items():
        v = (actions.get("value") or {}).get("value")
        values[block_id] = (v or "").strip()
    errors = {}
    if not values.get("cause"):
        errors["cause"] = "Say what caused it."
    link = values.get("link", "")
    if link and not link.startswith(("http://", "https://")):
        errors["link"] = "A link starts with http:// or https://"
    return hid, values, errors
