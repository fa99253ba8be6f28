"""Parse and validate runbook files (YAML front matter + Markdown body).

Pure: everything is read from the directory passed in; nothing is cached.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from incidentbot.categories import CATEGORIES
from incidentbot.causes import CAUSE_CLASSES

from .model import (
    ALLOWED_KEYS,
    MATCH_KEYS,
    REQUIRED_KEYS,
    REQUIRED_SECTIONS,
    SEVERITIES,
    CheckError,
    MatchRules,
    Runbook,
)

_FENCE = "---"
# A runbook is a page of Markdown; anything this large is a mistake or an attack, and is refused
# before it is read (the YAML parser is pure Python and memory grows with the document).
MAX_RUNBOOK_BYTES = 256 * 1024


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (``*name``): front matter never needs them, and they are
    what a "billion laughs" document expands from (a few lines → gigabytes of nested lists)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"aliases (*{event.anchor}) are not allowed in runbook front matter; write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _compose_front(front: str) -> tuple[yaml.Node | None, Any]:
    """(the composed node, its plain data), with aliases refused; raises yaml.YAMLError."""
    loader = _NoAliasLoader(front)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def _read_runbook(path: Path, directory: Path | None = None) -> str:
    """The file's text; OSError/ValueError (with the reason) when it must not be read: too
    large, or a symlink to a file outside the runbooks folder."""
    if directory is not None:
        real, root = path.resolve(), directory.resolve()
        if not real.is_relative_to(root):
            raise ValueError(
                f"a link to {real}, outside the runbooks folder {root}; refused (copy the file into the folder instead)"
            )
    size = path.stat().st_size
    if size > MAX_RUNBOOK_BYTES:
        raise ValueError(f"file is {size:,} bytes; a runbook may be at most {MAX_RUNBOOK_BYTES // 1024} KiB")
    with path.open("rb") as f:
        raw = f.read(MAX_RUNBOOK_BYTES + 1)  # the file may have grown since stat()
    if len(raw) > MAX_RUNBOOK_BYTES:
        raise ValueError(f"file is over {MAX_RUNBOOK_BYTES // 1024} KiB; a runbook may be at most that")
    return raw.decode("utf-8")


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _split_front_matter(text: str) -> tuple[str, str, int] | None:
    """Return (front_matter, body, body_first_line) or None if no front matter.

    Line numbers are 1-based; front matter starts at line 2.
    """
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != _FENCE:
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() == _FENCE:
            return "".join(lines[1:i]), "".join(lines[i + 1 :]), i + 2
    return None


def _node_lines(node: yaml.Node | None) -> dict[str, Any]:
    """Map top-level keys to line info from a composed YAML mapping node.

    Returns {key: (key_line0, value_node)}; lines are 0-based within the YAML.
    """
    out: dict[str, Any] = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                out.setdefault(str(k.value), (k.start_mark.line, v))
    return out


def parse_sections(body: str) -> dict[str, str]:
    """Split a Markdown body into {heading: text} on level-2 headings.

    Deeper headings stay inside their parent section's text. Headings inside
    fenced code blocks are ignored.
    """
    sections: dict[str, str] = {}
    current: str | None = None
    buf: list[str] = []
    in_fence = False
    for line in body.splitlines():
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            in_fence = not in_fence
        m = None if in_fence else _HEADING.match(line)
        if m and len(m.group(1)) == 2:
            if current is not None:
                sections[current] = "\n".join(buf).strip()
            current, buf = m.group(2).strip(), []
        elif current is not None:
            buf.append(line)
    if current is not None:
        sections[current] = "\n".join(buf).strip()
    return sections


def _find_section(sections: dict[str, str], name: str) -> str | None:
    """Case-insensitive section lookup that accepts 'Act' for 'Act: drain or not'."""
    lname = name.lower()
    for heading, text in sections.items():
        h = heading.lower()
        if h == lname or re.match(rf"{re.escape(lname)}\b", h):
            return text
    return None


def _str_list(value: Any) -> list[Any] | None:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return None


def parse_file(
    path: Path, display: str | None = None, *, samples: Iterable[str] = (), directory: Path | None = None
) -> tuple[Runbook | None, list[CheckError]]:
    """Parse one runbook file. Returns (runbook or None, per-file errors).

    A runbook is returned only when it has no errors. With ``directory``, a file that resolves
    outside it (a symlink from elsewhere) is refused.
    """
    shown = display or str(path)
    errors: list[CheckError] = []

    def err(line: int, msg: str) -> None:
        errors.append(CheckError(shown, line, msg))

    try:
        text = _read_runbook(path, directory)
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        err(1, f"cannot read file: {exc}")
        return None, errors

    split = _split_front_matter(text)
    if split is None:
        err(1, "missing YAML front matter (file must start with '---' and close it with '---')")
        return None, errors
    front, body, body_line = split
    base = 2  # file line of the first front-matter line

    try:
        node, data = _compose_front(front)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = base + (mark.line if mark else 0)
        problem = exc.problem or str(exc)
        err(line, f"YAML error: {problem}")
        return None, errors
    except yaml.YAMLError as exc:
        err(base, f"YAML error: {exc}")
        return None, errors

    if not isinstance(data, dict):
        err(base, "front matter must be a YAML mapping")
        return None, errors

    info = _node_lines(node)

    def line_of(key: str) -> int:
        return base + info[key][0] if key in info else base

    def item_line(key: str, index: int) -> int:
        if key not in info:
            return base
        vnode = info[key][1]
        if isinstance(vnode, yaml.SequenceNode) and index < len(vnode.value):
            return base + vnode.value[index].start_mark.line
        return line_of(key)

    for key in data:
        if str(key) not in ALLOWED_KEYS:
            err(line_of(str(key)), f"unknown key '{key}'")
    for key in REQUIRED_KEYS:
        if key not in data or data[key] in (None, ""):
            err(base, f"missing required key '{key}'")

    # id
    rb_id = data.get("id")
    if rb_id is not None:
        if not isinstance(rb_id, str) or not _ID.match(rb_id):
            err(line_of("id"), f"id {rb_id!r} must be lowercase letters, digits and dashes")
        elif rb_id != path.stem:
            err(line_of("id"), f"id '{rb_id}' does not match file name '{path.name}'")

    for key in ("title", "owner"):
        v = data.get(key)
        if v is not None and (not isinstance(v, str) or not v.strip()):
            err(line_of(key), f"'{key}' must be a non-empty string")

    sev = data.get("severity")
    if sev is not None and sev not in SEVERITIES:
        err(line_of("severity"), f"bad severity {sev!r} (expected one of {', '.join(SEVERITIES)})")

    reviewed: date | None = None
    lr = data.get("last_reviewed")
    if isinstance(lr, date):
        reviewed = lr
    elif lr is not None:
        try:
            reviewed = date.fromisoformat(str(lr))
        except ValueError:
            err(line_of("last_reviewed"), f"bad last_reviewed {lr!r} (expected YYYY-MM-DD)")

    # match rules
    rules = MatchRules()
    match = data.get("match")
    match_info: dict[str, Any] = {}
    pattern_index: list[tuple[int, str, re.Pattern[str]]] = []

    def pattern_line(index: int) -> int:
        if "patterns" in match_info:
            vnode = match_info["patterns"][1]
            if isinstance(vnode, yaml.SequenceNode) and index < len(vnode.value):
                return base + vnode.value[index].start_mark.line
            return base + match_info["patterns"][0]
        return line_of("match")

    if match is not None:
        if not isinstance(match, dict):
            err(line_of("match"), "'match' must be a mapping")
        else:
            match_info = _node_lines(info["match"][1]) if "match" in info else {}

            def mline(key: str, index: int | None = None) -> int:
                if key not in match_info:
                    return line_of("match")
                kline, vnode = match_info[key]
                if index is not None and isinstance(vnode, yaml.SequenceNode) and index < len(vnode.value):
                    return base + vnode.value[index].start_mark.line
                return base + kline

            for key in match:
                if str(key) not in MATCH_KEYS:
                    err(mline(str(key)), f"unknown key 'match.{key}'")
            for key in sorted(MATCH_KEYS):
                if _str_list(match.get(key)) is None:
                    err(mline(key), f"'match.{key}' must be a list")
            cats = _str_list(match.get("categories")) or []
            for i, c in enumerate(cats):
                if c not in CATEGORIES:
                    err(mline("categories", i), f"unknown category {c!r}")
            rules.categories = [str(c) for c in cats]
            ccs = _str_list(match.get("cause_classes")) or []
            for i, c in enumerate(ccs):
                if c not in CAUSE_CLASSES:
                    err(mline("cause_classes", i), f"unknown cause class {c!r}")
            rules.cause_classes = [str(c) for c in ccs]
            for i, x in enumerate(_str_list(match.get("xid")) or []):
                if isinstance(x, bool) or not isinstance(x, int) or x <= 0:
                    err(mline("xid", i), f"bad Xid {x!r} (expected a positive integer)")
                else:
                    rules.xid.append(x)
            for i, p in enumerate(_str_list(match.get("patterns")) or []):
                if not isinstance(p, str) or not p:
                    err(mline("patterns", i), f"pattern {p!r} must be a non-empty string")
                    continue
                try:
                    rx = re.compile(p, re.IGNORECASE)
                except re.error as exc:
                    err(mline("patterns", i), f"bad regex {p!r}: {exc}")
                    continue
                rules.patterns.append(p)
                rules.compiled.append(rx)
                pattern_index.append((i, p, rx))
            if not (rules.categories or rules.xid or rules.patterns):
                err(line_of("match"), "match needs at least one of categories, xid, patterns")

    lists: dict[str, list[str]] = {}
    for key in ("examples", "references", "related"):
        raw = _str_list(data.get(key))
        if raw is None:
            err(line_of(key), f"'{key}' must be a list")
            raw = []
        good: list[str] = []
        for i, v in enumerate(raw):
            if not isinstance(v, str) or not v.strip():
                err(item_line(key, i), f"'{key}' entries must be non-empty strings")
            else:
                good.append(v)
        lists[key] = good

    # each pattern must match at least one of its own examples
    examples = lists["examples"]
    candidates = examples + [s for s in samples if s]
    if rules.patterns and not candidates:
        err(line_of("match"), "patterns given but no 'examples' to check them against")
    else:
        for orig, src, rx in pattern_index:
            if not any(rx.search(ex) for ex in candidates):
                err(pattern_line(orig), f"pattern {src!r} matches none of the examples")

    # body sections
    sections = parse_sections(body)
    for name in REQUIRED_SECTIONS:
        if _find_section(sections, name) is None:
            err(body_line, f"missing section '## {name}'")

    if errors:
        return None, errors
    rb = Runbook(
        id=str(rb_id),
        title=str(data["title"]).strip(),
        owner=str(data["owner"]).strip(),
        last_reviewed=reviewed,  # type: ignore[arg-type]
        severity=str(sev),
        match=rules,
        examples=examples,
        references=lists["references"],
        related=lists["related"],
        body=body,
        path=path,
        sections=sections,
    )
    rb._body_line = body_line  # type: ignore[attr-defined]
    rb._related_line = line_of("related")  # type: ignore[attr-defined]
    rb._related_lines = [item_line("related", i) for i in range(len(lists["related"]))]  # type: ignore[attr-defined]
    return rb, errors


def iter_links(body: str, first_line: int) -> Iterable[tuple[int, str]]:
    """Yield (file line, target) for Markdown links outside fenced code."""
    in_fence = False
    for offset, line in enumerate(body.splitlines()):
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        for m in _LINK.finditer(line):
            yield first_line + offset, m.group(1)


def _display(path: Path) -> str:
    return str(path)


def load_with_errors(directory: Path, *, samples: Iterable[str] = ()) -> tuple[list[Runbook], list[CheckError]]:
    """Parse every ``*.md`` in ``directory``; return (valid runbooks, all errors)."""
    directory = Path(directory)
    sample_list = [s for s in samples if s]
    errors: list[CheckError] = []
    if not directory.is_dir():
        return [], [CheckError(str(directory), 0, "not a directory")]
    files = sorted(p for p in directory.glob("*.md") if p.is_file() and p.name.lower() != "readme.md")
    runbooks: list[Runbook] = []
    seen: dict[str, Runbook] = {}
    first_path: dict[str, Path] = {}
    for path in files:
        rb, errs = parse_file(path, _display(path), samples=sample_list, directory=directory)
        errors.extend(errs)
        raw_id, id_line = _raw_id(path, directory)
        if raw_id is not None:
            if raw_id in first_path:
                errors.append(
                    CheckError(
                        _display(path),
                        id_line,
                        f"duplicate id '{raw_id}' (also in {_display(first_path[raw_id])})",
                    )
                )
                continue
            first_path[raw_id] = path
        if rb is None:
            continue
        seen[rb.id] = rb
        runbooks.append(rb)

    stems = {p.stem for p in files}
    for rb in runbooks:
        shown = _display(rb.path)
        for i, rel in enumerate(rb.related):
            if rel == rb.id:
                errors.append(CheckError(shown, rb._related_lines[i], "runbook lists itself in related"))  # type: ignore[attr-defined]
            elif rel not in seen and rel not in stems:
                errors.append(CheckError(shown, rb._related_lines[i], f"related runbook '{rel}' does not exist"))  # type: ignore[attr-defined]
        for line, target in iter_links(rb.body, rb._body_line):  # type: ignore[attr-defined]
            if target.startswith("#") or _SCHEME.match(target):
                continue
            rel_path = target.split("#", 1)[0]
            if not rel_path:
                continue
            if not (rb.path.parent / rel_path).exists():
                errors.append(CheckError(shown, line, f"dead link '{target}'"))
    return runbooks, errors


def _raw_id(path: Path, directory: Path | None = None) -> tuple[str | None, int]:
    """The ``id`` value of a file's front matter and its line, even if the file is invalid."""
    try:
        split = _split_front_matter(_read_runbook(path, directory))
        if split is None:
            return None, 1
        node, _ = _compose_front(split[0])
    except (OSError, ValueError, yaml.YAMLError):
        return None, 1
    info = _node_lines(node)
    if "id" not in info or not isinstance(info["id"][1], yaml.ScalarNode):
        return None, 1
    return str(info["id"][1].value), 2 + info["id"][0]


def load_runbooks(directory: Path) -> list[Runbook]:
    """Return the valid runbooks in ``directory`` (invalid files are skipped;
    use :func:`check_runbooks` to see why)."""
    runbooks, _ = load_with_errors(directory)
    return runbooks


def check_runbooks(directory: Path, *, samples: Iterable[str] = ()) -> list[CheckError]:
    """Validate every runbook in ``directory``; return the errors (empty = OK).

    ``samples`` are extra failure texts; a pattern that matches none of its
    runbook's examples is still accepted when it matches one of them.
    """
    _, errors = load_with_errors(Path(directory), samples=samples)
    return errors
