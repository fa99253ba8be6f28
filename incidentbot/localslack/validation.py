"""Block Kit / message checks the way Slack applies them.

Each check returns `None` when fine, or `(error_code, [messages])` where `error_code` is the
name Slack uses (`invalid_blocks`, `invalid_blocks_format`, `msg_too_long`, `no_text`,
`invalid_arguments`) and the messages go to `response_metadata.messages`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MAX_BLOCKS_MESSAGE = 50
MAX_BLOCKS_MODAL = 100
MAX_TEXT = 40_000
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ID = 255
MAX_ACTIONS_ELEMENTS = 25
MAX_HEADER_TEXT = 150

Problem = tuple[str, list[str]] | None


def parse_json_param(value: Any) -> Any:
    """Form-encoded requests carry blocks/view/attachments as JSON strings; JSON bodies as objects."""
    if isinstance(value, (bytes, str)):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _text_of(obj: Any) -> str | None:
    if isinstance(obj, dict):
        t = obj.get("text")
        return t if isinstance(t, str) else None
    if isinstance(obj, str):
        return obj
    return None


def _check_element(el: Any, ptr: str, errors: list[str]) -> None:
    if not isinstance(el, dict):
        errors.append(f"[ERROR] must be an object [json-pointer:{ptr}]")
        return
    aid = el.get("action_id")
    if isinstance(aid, str) and len(aid) > MAX_ID:
        errors.append(f"[ERROR] must be less than {MAX_ID + 1} characters [json-pointer:{ptr}/action_id]")
    if el.get("type") == "button":
        t = _text_of(el.get("text"))
        if t is None:
            errors.append(f"[ERROR] missing required field: text [json-pointer:{ptr}]")
        elif len(t) > MAX_BUTTON_TEXT:
            errors.append(f"[ERROR] must be less than {MAX_BUTTON_TEXT + 1} characters [json-pointer:{ptr}/text]")
        v = el.get("value")
        if isinstance(v, str) and len(v) > MAX_BUTTON_VALUE:
            errors.append(f"[ERROR] must be less than {MAX_BUTTON_VALUE + 1} characters [json-pointer:{ptr}/value]")


def _check_block_raw(b: Any, ptr: str, errors: list[str]) -> None:
    if not isinstance(b, dict) or "type" not in b:
        errors.append(f"[ERROR] missing required field: type [json-pointer:{ptr}]")
        return
    bid = b.get("block_id")
    if isinstance(bid, str) and len(bid) > MAX_ID:
        errors.append(f"[ERROR] must be less than {MAX_ID + 1} characters [json-pointer:{ptr}/block_id]")
    btype = b["type"]
    if btype == "header":
        # Slack: a header's text is a plain_text object of at most 150 characters; mrkdwn is refused.
        text = b.get("text")
        if not isinstance(text, dict) or text.get("type") != "plain_text":
            errors.append(f"[ERROR] must be a valid enum value: plain_text [json-pointer:{ptr}/text/type]")
        elif isinstance(text.get("text"), str) and len(text["text"]) > MAX_HEADER_TEXT:
            errors.append(f"[ERROR] must be less than {MAX_HEADER_TEXT + 1} characters [json-pointer:{ptr}/text/text]")
    if btype == "section":
        t = _text_of(b.get("text"))
        if t is not None and len(t) > MAX_SECTION_TEXT:
            errors.append(f"[ERROR] must be less than {MAX_SECTION_TEXT + 1} characters [json-pointer:{ptr}/text/text]")
        fields = b.get("fields")
        if fields is not None:
            if not isinstance(fields, list):
                errors.append(f"[ERROR] must be an array [json-pointer:{ptr}/fields]")
            else:
                if len(fields) > MAX_FIELDS:
                    errors.append(f"[ERROR] no more than {MAX_FIELDS} items allowed [json-pointer:{ptr}/fields]")
                for i, f in enumerate(fields):
                    ft = _text_of(f)
                    if ft is not None and len(ft) > MAX_FIELD_TEXT:
                        errors.append(
                            f"[ERROR] must be less than {MAX_FIELD_TEXT + 1} characters "
                            f"[json-pointer:{ptr}/fields/{i}/text]"
                        )
        if t is None and not fields:
            errors.append(f"[ERROR] must provide either text or fields [json-pointer:{ptr}]")
        if isinstance(b.get("accessory"), dict):
            _check_element(b["accessory"], f"{ptr}/accessory", errors)
    elif btype == "actions":
        els = b.get("elements")
        if not isinstance(els, list) or not els:
            errors.append(f"[ERROR] missing required field: elements [json-pointer:{ptr}]")
        else:
            if len(els) > MAX_ACTIONS_ELEMENTS:
                errors.append(
                    f"[ERROR] no more than {MAX_ACTIONS_ELEMENTS} items allowed [json-pointer:{ptr}/elements]"
                )
            seen: set[str] = set()
            for i, el in enumerate(els):
                _check_element(el, f"{ptr}/elements/{i}", errors)
                # Slack: an action_id is unique within its block (a click names one element).
                aid = el.get("action_id") if isinstance(el, dict) else None
                if isinstance(aid, str):
                    if aid in seen:
                        errors.append(
                            f"[ERROR] duplicate action_id {aid!r} [json-pointer:{ptr}/elements/{i}/action_id]"
                        )
                    seen.add(aid)
    elif btype == "input":
        if isinstance(b.get("element"), dict):
            _check_element(b["element"], f"{ptr}/element", errors)


def validate_blocks(blocks: Any, *, max_blocks: int = MAX_BLOCKS_MESSAGE) -> Problem:
    """Validate a blocks array (already JSON-decoded) with slack_sdk's models plus explicit limits."""
    if not isinstance(blocks, list):
        return "invalid_blocks_format", ["[ERROR] must be an array [json-pointer:/blocks]"]
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(f"[ERROR] no more than {max_blocks} items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()
    for i, b in enumerate(blocks):
        ptr = f"/blocks/{i}"
        _check_block_raw(b, ptr, errors)
        bid = b.get("block_id") if isinstance(b, dict) else None
        if isinstance(bid, str):
            # Slack: a block_id is unique within a message or view.
            if bid in block_ids:
                errors.append(f"[ERROR] duplicate block_id {bid!r} [json-pointer:{ptr}/block_id]")
            block_ids.add(bid)
        if not isinstance(b, dict):
            continue
        try:
            parsed = Block.parse(copy.deepcopy(b))
            if parsed is None:
                errors.append(f"[ERROR] unsupported type: {b.get('type')!r} [json-pointer:{ptr}/type]")
                continue
            parsed.validate_json()
            parsed.to_dict()  # validates nested elements/text objects too
        except (SlackObjectFormationError, TypeError, ValueError, AttributeError, KeyError) as exc:
            errors.append(f"[ERROR] {exc} [json-pointer:{ptr}]")
    if errors:
        return "invalid_blocks", errors
    return None


def validate_message(params: dict, *, require_content: bool = True) -> Problem:
    """Checks for chat.postMessage / chat.update / chat.postEphemeral / response_url bodies."""
    text = params.get("text")
    if text is not None and not isinstance(text, str):
        text = str(text)
    if text is not None and len(text) > MAX_TEXT:
        return "msg_too_long", [f"[ERROR] text must be at most {MAX_TEXT} characters"]
    blocks = params.get("blocks")
    if blocks is not None:
        problem = validate_blocks(blocks)
        if problem:
            return problem
    if require_content and not text and not blocks and not params.get("attachments"):
        return "no_text", ["[ERROR] text, blocks or attachments required"]
    return None


def validate_view(view: Any) -> Problem:
    """Checks for views.open / views.update / views.push (`invalid_arguments` like Slack)."""
    if not isinstance(view, dict):
        return "invalid_arguments", ["[ERROR] must be an object [json-pointer:/view]"]
    errors: list[str] = []
    if view.get("type") not in ("modal", "home"):
        errors.append("[ERROR] must be either modal or home [json-pointer:/view/type]")
    if view.get("type") == "modal" and not view.get("title"):
        errors.append("[ERROR] missing required field: title [json-pointer:/view]")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        errors.append("[ERROR] missing required field: blocks [json-pointer:/view]")
    else:
        problem = validate_blocks(blocks, max_blocks=MAX_BLOCKS_MODAL)
        if problem:
            errors.extend(m.replace("json-pointer:/blocks", "json-pointer:/view/blocks") for m in problem[1])
    if not errors:
        try:
            View(**copy.deepcopy(view)).validate_json()
        except (SlackObjectFormationError, TypeError, ValueError, AttributeError, KeyError) as exc:
            errors.append(f"[ERROR] {exc} [json-pointer:/view]")
    if errors:
        return "invalid_arguments", errors
    return None
