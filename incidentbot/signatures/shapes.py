"""The shape cache in front of the parsers: texts of one failure differ mostly in their numbers.

The shape of a text is the text with every number-like token replaced. For each shape we learn,
once, which of its tokens the fingerprint depends on (an Xid code does, a PCI address or pid does
not) by rewriting tokens and re-parsing; later texts of that shape cost a translate and a dict
look-up instead of a full parse, so a 100,000-rank storm or a fleet's Xid lines parse once.

Text no rule's gate admits is learned at first sight without probing: the rules cannot tell two
such texts with the same digit-zeroed form apart, and the only digits its tokens keep are the
final digit of a word (``eth0``), read by position (``WORD_DIGIT``).

One instance per process (``signatures.SHAPES``); its tables start over when full.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any, cast

__all__ = ["ShapeCache", "MAX_TOKENS_THAT_MATTER", "MAX_PROBED_TOKENS"]

# Linear time: a token starts only where a hex run starts (the look-behind fails in O(1) inside a
# run) and every quantifier is possessive, so a 32 KiB run of hex letters with no digit is one
# scan, not a quadratic one. It matches a maximal hex run that holds a digit.
_TOKEN = re.compile(r"(?<![0-9A-Fa-f])[A-Fa-f]*+[0-9][0-9A-Fa-f]*+")
_TOKEN_SPLIT = re.compile(f"({_TOKEN.pattern})")
#: Texts with more number-like tokens than this are not probed (parsed each time instead).
MAX_PROBED_TOKENS = 256
#: Texts whose key depends on more tokens than this are parsed each time: a table keyed by so many
#: values would rarely be hit. (A pasted Megatron log repeats "number of nan iterations: 0" per line.)
MAX_TOKENS_THAT_MATTER = 32
_NO_CACHE = object()
# A learned shape: (positions of the tokens that matter, their values -> fingerprint, the exact
# digit widths it was checked with).
_Entry = tuple[tuple[int, ...], dict[tuple[str, ...], Any], set[str]]
_BY_WIDTH = object()
_SHAPE = str.maketrans("0123456789abcdefABCDEF", "0000000000aaaaaaAAAAAA")
# All-digit tokens are classed by width, not by exact width: 1-3 digits, 4 (years, PCI domains)
# and 5-9 digits each make one class, so ranks and pids of any size share a shape.
_SHORT_NUMBER = re.compile(r"(?<![0aA])0{1,3}(?![0aA])")
_LONG_NUMBER = re.compile(r"(?<![0aA])0{5,9}(?![0aA])")
_ROT_A = str.maketrans("0123456789abcdefABCDEF", "3456789012defabcDEFABC")
_ROT_B = str.maketrans("0123456789abcdefABCDEF", "7890123456cdefabCDEFAB")
DIGITS = str.maketrans("0123456789", "0000000000")
#: The digits an unclaimed text's tokens may keep: the last digit of a word (eth0, ssh2). A superset.
WORD_DIGIT = re.compile(r"(?<=[A-Za-z_-])[0-9](?![0-9])")


def _translator(table: dict[int, int]) -> Callable[[str], str]:
    return lambda tok: tok.translate(table)


def _rewrite(text: str, which, change: Callable[[str], str]) -> str:
    """``text`` with ``change`` applied to the tokens at positions ``which`` (all when None)."""
    i = -1

    def repl(m):
        nonlocal i
        i += 1
        return change(m.group()) if which is None or i in which else m.group()

    return _TOKEN.sub(repl, text)


def _resize(token: str) -> str:
    """An all-digit token of another width in the same width class; other tokens unchanged."""
    if not token.isdigit():
        return token
    n = len(token)
    if n <= 3:
        return "7" if n > 1 else "37"
    if 5 <= n <= 9:
        return "5" * (6 if n == 5 else n - 1)
    return token


def _spans(parts: list[str], matter: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Character spans of the tokens at positions ``matter`` (``parts`` as _TOKEN_SPLIT gives)."""
    spans, pos = [], 0
    for i, part in enumerate(parts):
        if i % 2 and i // 2 in matter:
            spans.append((pos, pos + len(part)))
        pos += len(part)
    return tuple(spans)


class ShapeCache:
    """Fingerprints by shape. ``parse(text, zeroed)`` gives (fingerprint with a ``key``, whether
    the text is unclaimed: then the answer holds for every text of that digit-zeroed form, apart
    from its ``WORD_DIGIT`` digits). Thread-safe; reads take no lock."""

    def __init__(
        self,
        parse: Callable[[str, str | None], tuple[object, bool]],
        *,
        size: int = 65536,
        max_tokens_that_matter: int = MAX_TOKENS_THAT_MATTER,
        max_probed_tokens: int = MAX_PROBED_TOKENS,
    ) -> None:
        self.size = size
        self.max_tokens_that_matter = max_tokens_that_matter
        self.max_probed_tokens = max_probed_tokens
        self._parse_gated = parse
        self._parsed: dict[str, object] = {}
        self._lock = threading.Lock()
        self._by_text: dict[str, object] = {}
        self._shapes: dict[str, object] = {}
        self._sightings: dict[str, int] = {}
        # digit-zeroed text -> (spans of the tokens that matter, that shape's table of fingerprints)
        self._by_digits: dict[str, tuple[tuple[tuple[int, int], ...], dict]] = {}

    def clear(self) -> None:
        with self._lock:
            self._parsed.clear()
            self._by_text.clear()
            self._shapes.clear()
            self._sightings.clear()
            self._by_digits.clear()

    def _put(self, cache: dict, key, value) -> None:
        # The tables start over when full: simpler than LRU, and a fleet's failure modes relearn fast.
        with self._lock:
            if len(cache) >= self.size:
                cache.clear()
            cache[key] = value

    def _parse(self, text: str):
        fp = self._parsed.get(text)
        if fp is None:
            fp = self._parse_gated(text, None)[0]
            self._put(self._parsed, text, fp)
        return fp

    def get(self, text: str):
        fp = self._by_text.get(text)
        if fp is not None:
            return fp
        fp = self._lookup(text)
        self._put(self._by_text, text, fp)
        return fp

    def _lookup(self, text: str):
        # Fast path: the text with its digits zeroed names one shape exactly (same tokens, same
        # widths), so a learned shape is found by one translate and one look-up, and the tokens that
        # matter are read by position. Texts with other digits or widths fall through and add theirs.
        digits = text.translate(DIGITS)
        fast = self._by_digits.get(digits)
        if fast is not None:
            spans, table = fast
            fp = table.get(tuple([text[a:b] for a, b in spans]))
            if fp is not None:
                return fp
        fp, unclaimed = self._parse_gated(text, digits)
        if not unclaimed:
            self._put(self._parsed, text, fp)
            return self._learned(text, digits)
        if fast is None:
            spans = tuple(m.span() for m in WORD_DIGIT.finditer(text))
            if len(spans) > self.max_tokens_that_matter:
                return fp
            fast = (spans, {})
            self._put(self._by_digits, digits, fast)
        spans, table = fast
        if len(table) >= self.size:
            table.clear()
        table[tuple([text[a:b] for a, b in spans])] = fp
        return fp

    def _learned(self, text: str, digits: str):
        parse = self._parse
        # One regex pass gives both the tokens and the text around them.
        parts = _TOKEN_SPLIT.split(text)
        tokens = parts[1::2]
        if not tokens:
            return parse(text)
        # Class-preserving, like the rewrites that learn a shape: 9b and a3 are different shapes.
        # All-digit tokens are classed by width class (a rank of 7 and of 70000 share a shape), unless
        # learning found that width matters for this shape (mlx5_core is not mlx37_core): then the
        # exact-width shape is used.
        skeleton = "\x00".join(parts[0::2])
        exact = "\x02".join(tokens).translate(_SHAPE)
        shape = skeleton + "\x01" + _LONG_NUMBER.sub("5", _SHORT_NUMBER.sub("1", exact))
        entry = self._shapes.get(shape)
        widths = True
        if entry is _BY_WIDTH:
            shape, widths = skeleton + "\x03" + exact, False
            entry = self._shapes.get(shape)
        if entry is _NO_CACHE:
            return parse(text)
        if entry is not None:
            matter, table, checked = cast(_Entry, entry)
            values = tuple(tokens[i] for i in matter)
            if not widths or exact in checked:
                fp = table.get(values)
                if fp is None:
                    fp = table[values] = parse(text)
                self._put(self._by_digits, digits, (_spans(parts, matter), table))
                return fp
            # Widths this shape has not been checked with (a rank of 7 where it learned 70000): the
            # first such text is parsed and must agree with what the shape predicts; a disagreement
            # (a PCI id of other widths is no longer a PCI id) sends the shape back to exact widths.
            fp = parse(text)
            predicted = table.get(values)
            if predicted is not None:
                if predicted.key == fp.key:
                    checked.add(exact)
                    self._put(self._by_digits, digits, (_spans(parts, matter), table))
                else:
                    self._shapes[shape] = _BY_WIDTH
            return fp
        fp = parse(text)
        # A shape is learned on its second sight: one-off texts cost one parse, not a dozen.
        seen = self._sightings.get(shape, 0) + 1
        if seen < 2:
            self._put(self._sightings, shape, seen)
            return fp
        self._sightings.pop(shape, None)
        matter, width_free = self._learn(text, tokens, fp.key, widths=widths)
        if matter is None:
            self._put(self._shapes, shape, _NO_CACHE)
            return fp
        learned: _Entry = (matter, {tuple(tokens[i] for i in matter): fp}, {exact})
        if widths and not width_free:
            self._put(self._shapes, shape, _BY_WIDTH)
            shape = skeleton + "\x03" + exact
        self._put(self._shapes, shape, learned)
        self._put(self._by_digits, digits, (_spans(parts, matter), learned[1]))
        return fp

    def _learn(self, text: str, tokens: list[str], key: str, *, widths: bool):
        """Which token positions the key depends on: () when none, None when it cannot be told; and
        whether the answer also holds for other widths of the shape's all-digit tokens.

        Group testing: rewrite a set of tokens at once and split only the sets that change the key,
        so a shape with a hundred numbers and one that matters costs a few dozen parses, once. The
        search uses one rewrite; the answer is then checked with a second one."""
        parse = self._parse

        def same(which, tables: tuple[dict[int, int], ...] = (_ROT_A,)) -> bool:
            return all(parse(_rewrite(text, which, _translator(t))).key == key for t in tables)

        def resized(which) -> bool:
            return parse(_rewrite(text, which, _resize)).key == key

        every = set(range(len(tokens)))
        if same(every, (_ROT_A, _ROT_B)):
            return (), (not widths or resized(every))
        if len(tokens) > self.max_probed_tokens:
            return None, False

        def find(units: list[tuple[int, ...]]) -> list[int]:
            if same({i for unit in units for i in unit}):
                return []
            if len(units) == 1:
                return list(units[0])
            mid = len(units) // 2
            return find(units[:mid]) + find(units[mid:])

        # Token by token first. A pasted log that repeats one failure on several lines may depend on
        # a value wherever it appears (the Xid code of either line): rewriting one copy changes
        # nothing, so then the tokens of one value are rewritten together.
        by_value: dict[str, list[int]] = {}
        for i, tok in enumerate(tokens):
            by_value.setdefault(tok, []).append(i)
        singles: list[tuple[int, ...]] = [(i,) for i in range(len(tokens))]
        for units in (singles, [tuple(v) for v in by_value.values()]):
            matter = tuple(sorted(find(units)))
            rest = every - set(matter)
            if matter and len(matter) <= self.max_tokens_that_matter and same(rest, (_ROT_A, _ROT_B)):
                return matter, (not widths or resized(rest))
        return None, False
