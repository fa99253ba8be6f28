"""Online template mining: the one grouping engine, for every replica, every restart and the bench.

The parsers claim what they know of a text (a category, an Xid code, a collective op, an
exception type: the *partition*); the rest of it, the *free* text, is tokenised (``tokens.py``,
where a token holding a digit, a path or a dotted name is a variable by its shape). Whether any
other token varies is decided here, from the texts themselves, the way Drain and Brain do it:

1. A text's bucket is its partition, its token count and its first token (unless that is or
   holds a variable): texts of one template almost always agree on those.
2. Inside the bucket, the text joins the *family* whose base it matches best (the share of
   positions where the base holds the same constant, or a constant already seen to vary,
   Drain's similarity; on a tie, the family that agrees on the first token), if that share
   reaches ``similarity`` (a two-token text: its first token); else it starts a family. A bucket
   with ``max_families`` families starts no more: a text that matches none joins the bucket's
   catch-all (its first token, then variables), so a flood of unique texts is bounded.
3. Where a joining text differs from its family's base, the position has been *seen to vary*. A
   few distinct word values (at most ``max_const_values``: states, verbs, directions) still tell
   failure modes apart, so each combination is its own template. One value more, or values that
   show by their shape that the position is a variable (one is ``<*>``, or ``uid=<*>`` beside
   ``uid=root``; not ``num=<*>`` beside ``top=<*>``, two keys), and the position is *judged
   variable* (``<*>``): the family has
   generalised. A family with more than ``max_templates`` combinations generalises the position
   with the most values.
4. Each template is a signature, keyed by ``template_fingerprint(partition, template)`` as it was
   first seen. When the family generalises, templates that now read the same collapse into the
   oldest of them: the others are *merged* into it (``Assigned.merges``), the way people merge
   signatures, so ids never change meaning and an absorbed signature stays a valid, undoable
   pointer. The family remembers what each absorbed template read; undoing the merge *pins* it
   (``Family.restore``): texts that read it go to its signature again.

A family is plain data (``Family.to_row`` / ``from_row``): the service keeps families in the
database and calls ``assign`` under a lock on the bucket, so every replica decides from the same
state; ``TemplateEngine`` keeps them in memory (benchmarks, ``group()``). ``assign`` is a pure
function of the bucket's families and the tokens, deterministic across processes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .tokens import VAR

__all__ = [
    "TemplateParams",
    "Family",
    "Assigned",
    "assign",
    "bucket_key",
    "template_fingerprint",
    "TemplateEngine",
    "SEPARATOR",
    "DEFAULT_PARAMS",
]

SEPARATOR = "\n"  # the token between the lines of a multi-line free text (tokens never hold whitespace)


@dataclass(frozen=True, slots=True)
class TemplateParams:
    # Measured on the Loghub 2k samples (bench/grouping.py): 0.5-0.6 and 3-4 are a plateau; below
    # it unrelated messages of one length join, above it one template splits on its variables.
    similarity: float = 0.6  # share of positions a text must match to join a family
    max_const_values: int = 4  # distinct word values a position may hold and still tell templates apart
    max_templates: int = 64  # combinations of such values one family keeps apart
    max_tokens: int = 256  # tokens of a free text that take part in grouping (the rest is cut)
    # Families one bucket keeps apart. Past it, a text that matches none joins the bucket's
    # catch-all (its first token, then variables): a flood of unique texts of one shape is one
    # signature, and placing a text stays a bounded scan with a bounded write.
    max_families: int = 128


DEFAULT_PARAMS = TemplateParams()


def _digest(*parts: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode("utf-8", "backslashreplace"))
        h.update(b"\x1f")
    return h.hexdigest()


def template_fingerprint(partition: str, template: str) -> str:
    """The signature key of a template within its partition (stable across processes)."""
    return _digest(partition, template)


def bucket_key(partition: str, toks: tuple[str, ...]) -> str:
    # A text of one or two tokens has no other tokens to tell its template by: its first token
    # may be the variable, so it is not part of its bucket; nor is a first token with a variable
    # part (``host:<*>``), whose constant part is as likely to vary.
    first = toks[0] if len(toks) > 2 and VAR not in toks[0] else ""
    return _digest(partition, str(len(toks)), first)


@dataclass(slots=True)
class Family:
    key: str  # digest of the bucket and the first text's tokens: the same in every replica
    bucket: str
    partition: str
    base: list[str]  # constants and VAR
    splits: dict[int, list[str]] = field(default_factory=dict)  # position seen to vary -> its values
    templates: dict[str, str] = field(default_factory=dict)  # template -> signature fingerprint (oldest first)
    # position judged variable -> (a value it held, distinct values seen, texts the family had learned from)
    variable: dict[int, tuple[str, int, int]] = field(default_factory=dict)
    texts: int = 0  # distinct token sequences the family learned from
    # Undo: a template that collapsed into another keeps what it read (absorbed fingerprint ->
    # template), so that undoing the merge can pin it: texts that read a pinned template (its
    # constants where the family now has variables) go to its signature again.
    absorbed: dict[str, str] = field(default_factory=dict)
    pinned: dict[str, str] = field(default_factory=dict)  # template -> signature fingerprint

    def template_of(self, toks: tuple[str, ...]) -> str:
        base, splits = self.base, self.splits
        return " ".join(toks[i] if i in splits else base[i] for i in range(len(base)))

    def to_row(self) -> dict:
        return {
            "key": self.key,
            "bucket": self.bucket,
            "partition": self.partition,
            "base": list(self.base),
            "splits": {str(i): list(v) for i, v in self.splits.items()},
            "templates": dict(self.templates),
            "variable": {str(i): list(v) for i, v in self.variable.items()},
            "texts": self.texts,
            "pins": {"absorbed": dict(self.absorbed), "pinned": dict(self.pinned)},
        }

    @classmethod
    def from_row(cls, row: Any) -> Family:
        """From a row mapping or an object with the row's attributes."""
        get: Callable[[str], Any] = row.get if isinstance(row, dict) else lambda k: getattr(row, k, None)
        pins = get("pins") or {}
        return cls(
            key=str(get("key")),
            bucket=str(get("bucket")),
            partition=str(get("partition")),
            base=list(get("base") or ()),
            splits={int(i): list(v) for i, v in (get("splits") or {}).items()},
            templates=dict(get("templates") or {}),
            variable={int(i): (str(v[0]), int(v[1]), int(v[2])) for i, v in (get("variable") or {}).items()},
            texts=int(get("texts") or 0),
            absorbed=dict(pins.get("absorbed") or {}),
            pinned=dict(pins.get("pinned") or {}),
        )

    def restore(self, fp: str) -> bool:
        """Undo the collapse of signature ``fp`` into another: its template is pinned, so texts
        that read it go to ``fp`` again. False when this family did not absorb ``fp``."""
        template = self.absorbed.pop(fp, None)
        if template is None:
            return False
        self.pinned[template] = fp
        return True

    def pinned_of(self, toks: tuple[str, ...]) -> tuple[str, str] | None:
        """(template, fingerprint) of the pinned template ``toks`` read, if any (oldest pin first)."""
        for template, fp in self.pinned.items():
            parts = template.split(" ")
            if len(parts) == len(toks) and all(p == VAR or p == t for p, t in zip(parts, toks, strict=True)):
                return template, fp
        return None

    def judged_variable(self) -> list[tuple[int, str, int, int]]:
        """(position, a value it held, distinct values seen, texts) of the positions the data made variable."""
        return [(i, *self.variable[i]) for i in sorted(self.variable)]


@dataclass(frozen=True, slots=True)
class Assigned:
    fingerprint: str  # the signature of the text's template (oldest of those it collapsed with)
    template: str
    family: Family
    merges: tuple[tuple[str, str], ...] = ()  # (absorbed fingerprint, surviving fingerprint)
    new_family: bool = False
    changed: bool = False  # whether the family's state changed (it must be written back)


def _similarity(f: Family, toks: tuple[str, ...]) -> int:
    base, splits = f.base, f.splits
    eq = 0
    for i, t in enumerate(toks):
        b = base[i]
        if b != VAR and (b == t or i in splits):
            eq += 1
    return eq


_MAX_ABSORBED = 256  # collapsed templates a family remembers for undo (past it, the oldest stay undoable)


def _varies_by_shape(values: list[str]) -> bool:
    """Whether the values one position held show by their shape that it is a variable: one of them
    is a variable, or one is a variable after a prefix (``uid=<*>``) that another value shares
    (``uid=root``). Values that differ in a constant (``num=<*>`` and ``top=<*>``: two keys) do not."""
    for v in values:
        if v == VAR:
            return True
        cut = v.find(VAR)
        if cut > 0:
            prefix = v[:cut]
            if any(w is not v and w.startswith(prefix) for w in values):
                return True
    return False


def _generalise(f: Family, positions: Iterable[int]) -> list[tuple[str, str]]:
    """Judge ``positions`` variable and collapse the templates that now read the same."""
    positions = set(positions)
    for i in positions:
        values = f.splits.pop(i, None) or [f.base[i]]
        f.variable[i] = (values[0], len(values), f.texts)
        f.base[i] = VAR
    merges: list[tuple[str, str]] = []
    rewritten: dict[str, str] = {}
    for template, fp in f.templates.items():
        parts = template.split(" ")
        new = " ".join(VAR if i in positions else p for i, p in enumerate(parts))
        survivor = rewritten.get(new)
        if survivor is None:
            rewritten[new] = fp
        elif survivor != fp:
            merges.append((fp, survivor))
            if len(f.absorbed) < _MAX_ABSORBED:
                f.absorbed[fp] = template
    f.templates = rewritten
    return merges


def assign(
    families: list[Family],
    toks: tuple[str, ...],
    *,
    partition: str,
    params: TemplateParams = DEFAULT_PARAMS,
    claimed: bool = False,
) -> Assigned:
    """Place one text (its free tokens) among its bucket's families (updated in place; a new family
    is appended). ``families`` must be the bucket's families in the order they were made."""
    toks = toks[: params.max_tokens]
    n = len(toks)
    best, best_eq, best_first = None, -1, False
    first = toks[:1]
    for f in families:
        eq = _similarity(f, toks)
        # On a tie the family that agrees on the first token wins: in short texts (whose first
        # token is not part of the bucket) it is the one place the template's constant can be.
        agrees = bool(first) and tuple(f.base[:1]) == first
        if eq > best_eq or (eq == best_eq and not best_first and agrees):
            best, best_eq, best_first = f, eq, agrees
    # A one-token free text of a claimed partition (the parser knows the failure; the text is its
    # argument, a key name) can only show that its token varies: it joins the bucket's family.
    if best is None or (
        n
        and best_eq < params.similarity * n
        and not (claimed and n == 1)
        and not (n == 2 and best_eq == 1 and best_first)
    ):
        bucket = bucket_key(partition, toks)
        if len(families) >= params.max_families:
            return _overflow(families, toks, bucket=bucket, partition=partition)
        f = Family(key=_digest(bucket, *toks), bucket=bucket, partition=partition, base=list(toks), texts=1)
        template = " ".join(toks)
        fp = f.templates[template] = template_fingerprint(partition, template)
        families.append(f)
        return Assigned(fp, template, f, new_family=True, changed=True)
    f = best
    changed = False
    judged: list[int] = []
    base, splits, k = f.base, f.splits, params.max_const_values
    for i, t in enumerate(toks):
        b = base[i]
        if b == VAR or b == t:
            continue
        values = splits.get(i)
        if values is None:
            values = splits[i] = [b]
        if t not in values:
            values.append(t)
            changed = True
            if len(values) > k or _varies_by_shape(values):
                judged.append(i)
    merges: list[tuple[str, str]] = []
    if judged:
        merges += _generalise(f, judged)
    template = f.template_of(toks)
    known = f.templates.get(template)
    if known is None:
        if len(f.templates) >= params.max_templates and f.splits:
            # Too many combinations to keep apart: the position with the most values varies.
            widest = max(sorted(f.splits), key=lambda i: len(f.splits[i]))
            merges += _generalise(f, [widest])
            template = f.template_of(toks)
            known = f.templates.get(template)
        if known is None:
            known = f.templates[template] = template_fingerprint(partition, template)
        changed = True
    fp = known
    if changed:
        f.texts += 1
    if f.pinned:
        pin = f.pinned_of(toks)
        if pin is not None:
            template, fp = pin
    return Assigned(fp, template, f, tuple(merges), changed=changed)


def _overflow(families: list[Family], toks: tuple[str, ...], *, bucket: str, partition: str) -> Assigned:
    """The bucket is full: the text joins its catch-all family (made once, as its last family)."""
    key = _digest(bucket, " catch-all")  # tokens never hold a space: no family of texts has this key
    for f in reversed(families):
        if f.key == key:
            template = " ".join(f.base)
            return Assigned(f.templates[template], template, f)
    base = [toks[0] if len(toks) > 2 and toks[0] != VAR else VAR] + [VAR] * (len(toks) - 1)
    f = Family(key=key, bucket=bucket, partition=partition, base=base, texts=1)
    f.variable = {i: (toks[i], 1, 1) for i in range(len(base)) if base[i] == VAR and toks[i] != VAR}
    template = " ".join(base)
    fp = f.templates[template] = template_fingerprint(partition, template)
    families.append(f)
    return Assigned(fp, template, f, new_family=True, changed=True)


class TemplateEngine:
    """The engine with its families in memory, for one process (benchmarks, ``group()``).

    ``assign`` is memoised per (partition, tokens): a repeated token sequence is one dict look-up.
    A memoised answer may name a signature that was merged since; ``canonical`` follows merges."""

    def __init__(self, params: TemplateParams = DEFAULT_PARAMS, *, memo_size: int = 200_000) -> None:
        self.params = params
        self.memo_size = memo_size
        self._buckets: dict[str, list[Family]] = {}
        self._memo: dict[object, str] = {}
        self._merged: dict[str, str] = {}
        self.templates: dict[str, str] = {}  # fingerprint -> template as last known

    def fingerprint_of(
        self, partition: str, toks: tuple[str, ...], memo_key: object = None, *, claimed: bool = False
    ) -> str:
        key = (partition, toks) if memo_key is None else memo_key
        fp = self._memo.get(key)
        if fp is not None:
            return fp
        families = self._buckets.setdefault(bucket_key(partition, toks[: self.params.max_tokens]), [])
        got = assign(families, toks, partition=partition, params=self.params, claimed=claimed)
        for absorbed, survivor in got.merges:
            self._merged[absorbed] = survivor
        for template, fp_ in got.family.templates.items():
            self.templates[fp_] = template
        if len(self._memo) >= self.memo_size:
            self._memo.clear()
        self._memo[key] = got.fingerprint
        return got.fingerprint

    def canonical(self, fp: str) -> str:
        hops = 0
        while fp in self._merged and hops < 1000:
            fp, hops = self._merged[fp], hops + 1
        return fp

    @property
    def merges(self) -> dict[str, str]:
        return dict(self._merged)

    def families(self) -> list[Family]:
        return [f for fams in self._buckets.values() for f in fams]
