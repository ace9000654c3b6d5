"""Redis 7.0 glob matching (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET) that never backtracks.

Semantics, byte for byte those of Redis 7.0 ``stringmatchlen``:

* ``*`` matches any run of bytes, ``?`` any one byte, ``\\x`` the byte ``x``; a trailing
  backslash is a literal backslash.
* ``[...]`` matches one byte from a set; ``[^...]`` its complement.  Inside, ``\\x`` is the
  byte ``x`` (compared case-sensitively even with ``nocase``), ``a-z`` a range whose ends may
  come in either order and are compared as *signed* chars (bytes >= 0x80 sort below 0x00),
  and the first ``]`` closes the set, so ``[]`` matches nothing and ``[^]`` any byte.  A
  range may swallow the closing bracket (``[a-]`` is the range ``]``..``a``, still open).
  An unterminated set ends with the pattern: ``[ab`` is ``[ab]``, ``[`` matches nothing.
* ``nocase`` folds ASCII letters only (C-locale ``tolower``); range ends are folded after
  they are ordered, so ``[Z-a]`` matches nothing when folding.
* An empty string matches only the empty pattern: even ``*`` does not match ``""``.  KEYS
  and SCAN skip matching for the pattern ``*`` exactly, so they do return an empty key;
  callers must keep that shortcut.

Algorithm: a pattern parses into single-byte predicates and stars.  Every predicate consumes
exactly one byte, so each stretch between stars (a "segment") has a fixed length.  The string
matches iff the first segment matches at the start, the last at the end, and the middle ones
occur left to right without overlapping; taking each middle segment at its leftmost
occurrence is always safe, so a failed search is final and nothing is ever retried.  The
cost is one substring search per segment: ``bytes.find`` for plain text, a bounded regex
for short segments with sets, and bit-parallel matching for long ones.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

ANY_BYTE = (1 << 256) - 1
_UPPER = sum(1 << c for c in range(ord("A"), ord("Z") + 1))
_LOWER = _UPPER << 32
_SHORT_SEGMENT = 32  # longer segments with sets use bitsets: regex search is O(n * length)
_REGEX_TOKENS = 256  # patterns up to this size compile to a single regex
_CACHE_LIMIT = 1024  # longer texts are parsed afresh, so caches never pin big patterns

Matcher = Callable[[bytes], bool]


def stringmatch(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    """Whether ``string`` matches the glob ``pattern`` exactly as Redis 7.0 decides."""
    return compile_glob(pattern, nocase)(string)


def compile_glob(pattern: bytes, nocase: bool = False) -> Matcher:
    """A function telling whether a string matches ``pattern``; build once, call per key."""
    if len(pattern) > _CACHE_LIMIT:
        return _compile(pattern, nocase)
    return _compile_cached(pattern, nocase)


def _compile(pattern: bytes, nocase: bool) -> Matcher:
    shape = _parse(pattern, nocase)
    if any(0 in masks for masks in shape.all_masks()):  # ``[]`` never matches a byte
        return _never
    return _fast_path(shape) or _regex_path(shape) or _SegmentMatcher(shape)


_compile_cached = functools.lru_cache(maxsize=512)(_compile)


def _never(string: bytes) -> bool:
    return False


# --- parsing ------------------------------------------------------------------------------

Masks = tuple[int, ...]
_BRACKET_SOURCE = rb"\[\^?(?:\\[\s\S]|[^\]]-[\s\S]|[^\]])*+\]?"
_BRACKET = re.compile(rb"\[(\^?)((?:\\[\s\S]|[^\]]-[\s\S]|[^\]])*+)\]?")
_BRACKET_ITEM = re.compile(rb"\\([\s\S])|([\s\S])-([\s\S])|([\s\S])")
_ITEM = re.compile(b"(" + _BRACKET_SOURCE + rb")|(\?)|\\([\s\S])|([^?\[\\]+)|(\\)")
# A segment's text, then the run of stars after it (or the end of the pattern).
_SEGMENT = re.compile(rb"((?:" + _BRACKET_SOURCE + rb"|\\[\s\S]?|[^*\[\\])*+)(\*+|\Z)")


@dataclass(frozen=True)
class _Shape:
    """A parsed pattern: ``head *middle* ... *tail``; equal neighbouring middles counted once."""

    head: Masks
    middles: list[tuple[Masks, int]]  # (segment, how many times in a row)
    tail: Masks | None  # None: the pattern has no star

    def all_masks(self) -> list[Masks]:
        return [self.head, self.tail or (), *(masks for masks, _ in self.middles)]


def _parse(pattern: bytes, nocase: bool) -> _Shape:
    texts = _segment_texts(pattern)
    if len(texts) == 1:
        return _Shape(_segment_masks(texts[0], nocase), [], None)
    middles = [
        (_segment_masks(text, nocase), len(list(group)))
        for text, group in itertools.groupby(texts[1:-1])
        if text
    ]
    return _Shape(_segment_masks(texts[0], nocase), middles, _segment_masks(texts[-1], nocase))


def _segment_texts(pattern: bytes) -> list[bytes]:
    """The pattern's text between runs of stars (stars in sets or escaped do not count)."""
    if b"[" not in pattern and b"\\" not in pattern:
        return pattern.split(b"*")
    texts = []
    for text, stars in _SEGMENT.findall(pattern):
        texts.append(text)
        if not stars:  # the end of the pattern; findall may add an empty match after it
            break
    return texts


def _segment_masks(text: bytes, nocase: bool) -> Masks:
    """One mask of accepted bytes per predicate of a star-free segment text."""
    if len(text) > _CACHE_LIMIT:
        return _parse_segment(text, nocase)
    return _parse_segment_cached(text, nocase)


def _parse_segment(text: bytes, nocase: bool) -> Masks:
    if b"[" not in text and b"\\" not in text:
        return tuple(ANY_BYTE if byte == 0x3F else _literal_mask(byte, nocase) for byte in text)
    return tuple(_tokenize(text, nocase))


_parse_segment_cached = functools.lru_cache(maxsize=4096)(_parse_segment)


def _tokenize(text: bytes, nocase: bool) -> list[int]:
    """Masks for the predicates of a segment text that contains no star."""
    tokens: list[int] = []
    for bracket, question, escaped, run, backslash in _ITEM.findall(text):
        if bracket:
            cached = len(bracket) <= _CACHE_LIMIT
            tokens.append((_bracket_mask_cached if cached else _bracket_mask)(bracket, nocase))
        elif question:
            tokens.append(ANY_BYTE)
        else:  # an escaped byte, plain text, or a trailing backslash standing for itself
            tokens.extend(_literal_mask(byte, nocase) for byte in escaped or run or backslash)
    return tokens


@functools.lru_cache(maxsize=4096)
def _literal_mask(byte: int, nocase: bool) -> int:
    if nocase and (0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A):
        return (1 << (byte | 0x20)) | (1 << (byte & ~0x20))
    return 1 << byte


def _bracket_mask(bracket: bytes, nocase: bool) -> int:
    """The set of bytes a bracket expression (``[`` to its end) accepts."""
    parsed = _BRACKET.fullmatch(bracket)
    assert parsed is not None
    negate, body = parsed[1] == b"^", parsed[2]
    mask = 0
    for item in _BRACKET_ITEM.finditer(body):
        escaped, first, last, single = item.groups()
        if escaped is not None:
            mask |= 1 << escaped[0]  # escapes ignore nocase, as in Redis
        elif first is not None:
            mask |= _range_mask(first[0], last[0], nocase)
        else:
            mask |= _literal_mask(single[0], nocase)
    return mask ^ ANY_BYTE if negate else mask


_bracket_mask_cached = functools.lru_cache(maxsize=4096)(_bracket_mask)


def _signed(byte: int) -> int:
    """Redis compares range ends as C ``char``, which is signed on the platforms it runs on."""
    return byte - 256 if byte >= 0x80 else byte


def _range_mask(first: int, last: int, nocase: bool) -> int:
    low, high = sorted((_signed(first), _signed(last)))
    if nocase:
        low, high = _tolower(low), _tolower(high)
    accepted = _signed_interval(low, high)
    if nocase:  # a byte matches when its lowercase form falls in the interval
        accepted = (accepted & ~_UPPER) | ((accepted & _LOWER) >> 32)
    return accepted


def _tolower(value: int) -> int:
    return value + 32 if 0x41 <= value <= 0x5A else value


def _signed_interval(low: int, high: int) -> int:
    """Mask of the bytes whose signed value lies in ``[low, high]``."""
    mask = 0
    if high >= 0 and low <= high:
        mask |= (1 << (high + 1)) - (1 << max(low, 0))
    if low < 0 and low <= high:
        mask |= (1 << (min(high, -1) + 257)) - (1 << (low + 256))
    return mask


# --- segments -----------------------------------------------------------------------------


class _Segment:
    """A fixed-length run of predicates between stars, with the cheapest way to find it."""

    __slots__ = ("size", "kind", "text", "regex", "runs")

    def __init__(self, masks: Masks) -> None:
        self.size = len(masks)
        self.text = b""
        self.regex: re.Pattern[bytes] | None = None
        self.runs: list[tuple[int, int, int]] = []
        if all(mask == ANY_BYTE for mask in masks):
            self.kind = "any"
        elif _is_text(masks):
            self.kind = "exact"
            self.text = _text(masks)
        elif all(_folded_byte(mask) is not None for mask in masks):
            self.kind = "folded"  # case-insensitive text: search the lowercased string
            self.text = bytes(_folded_byte(mask) or 0 for mask in masks)
        elif self.size <= _SHORT_SEGMENT:
            self.kind = "regex"
            source = b"".join(_class_source(mask) for mask in masks)
            self.regex = re.compile(source, re.DOTALL)
        else:
            self.kind = "bits"
            self.runs = _runs(masks)

    def match_at(self, probe: _Probe, pos: int) -> bool:
        """Whether the segment matches at ``pos``; the caller ensures it fits."""
        kind = self.kind
        if kind == "exact":
            return probe.string.startswith(self.text, pos)
        if kind == "folded":
            return probe.lowered().startswith(self.text, pos)
        if kind == "regex":
            assert self.regex is not None
            return self.regex.match(probe.string, pos) is not None
        if kind == "bits":
            return probe.find_bits(self.runs, pos, pos + self.size) == pos
        return True

    def find(self, probe: _Probe, start: int, end: int) -> int:
        """Leftmost position in ``[start, end - size]`` where the segment matches, or -1."""
        kind = self.kind
        if kind == "exact":
            return probe.string.find(self.text, start, end)
        if kind == "folded":
            return probe.lowered().find(self.text, start, end)
        if kind == "regex":
            assert self.regex is not None
            found = self.regex.search(probe.string, start, end)
            return -1 if found is None else found.start()
        if kind == "bits":
            return probe.find_bits(self.runs, start, end)
        return start if start + self.size <= end else -1


def _segment(masks: Masks) -> _Segment:
    return _Segment(masks) if len(masks) > 64 else _small_segment(masks)


@functools.lru_cache(maxsize=1024)
def _small_segment(masks: Masks) -> _Segment:
    return _Segment(masks)


def _folded_byte(mask: int) -> int | None:
    """The lowercase byte if ``mask`` is a single non-letter or exactly a letter's two cases."""
    if mask & (mask - 1) == 0:
        byte = mask.bit_length() - 1
        return None if 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A else byte
    high = mask.bit_length() - 1
    if 0x61 <= high <= 0x7A and mask == (1 << high) | (1 << (high - 32)):
        return high
    return None


@functools.lru_cache(maxsize=4096)
def _class_source(mask: int) -> bytes:
    """A regex matching one byte of ``mask``."""
    if mask == ANY_BYTE:
        return b"."
    if mask & (mask - 1) == 0:
        return re.escape(bytes([mask.bit_length() - 1]))
    parts = []
    byte = 0
    while byte < 256:
        if mask >> byte & 1:
            first = byte
            while byte < 255 and mask >> (byte + 1) & 1:
                byte += 1
            parts.append(b"\\x%02x-\\x%02x" % (first, byte))
        byte += 1
    return b"[" + b"".join(parts) + b"]"


@functools.lru_cache(maxsize=256)
def _bit_table(mask: int) -> bytes:
    """A ``bytes.translate`` table writing "1" for the bytes in ``mask`` and "0" otherwise."""
    return bytes(0x31 if mask >> byte & 1 else 0x30 for byte in range(256))


def _runs(masks: Masks) -> list[tuple[int, int, int]]:
    """(mask, offset, length) for each maximal run of equal predicates."""
    runs: list[tuple[int, int, int]] = []
    for offset, mask in enumerate(masks):
        if runs and runs[-1][0] == mask:
            runs[-1] = (mask, runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((mask, offset, 1))
    return runs


class _Probe:
    """One string being matched, with per-string caches the segments share."""

    __slots__ = ("string", "_lowered", "_bits")

    def __init__(self, string: bytes) -> None:
        self.string = string
        self._lowered: bytes | None = None
        self._bits: dict[tuple[int, int], int] = {}

    def lowered(self) -> bytes:
        if self._lowered is None:
            self._lowered = self.string.lower()  # ASCII only, like C tolower
        return self._lowered

    def find_bits(self, runs: list[tuple[int, int, int]], start: int, end: int) -> int:
        """Bit-parallel search: bit i of ``candidates`` survives while position i can match.

        Each run of ``length`` equal predicates needs bytes i+offset .. i+offset+length-1 in
        its set; that is one shift-and of a "run of accepted bytes" bitset over the string.
        Cost: O(runs * len(string) / 64) machine-word operations, whatever the input.
        """
        size = runs[-1][1] + runs[-1][2]
        if end - start < size:
            return -1
        candidates = ((1 << (end - start - size + 1)) - 1) << start
        for mask, offset, length in runs:
            candidates &= self._run_bits(mask, length) >> offset
            if not candidates:
                return -1
        return (candidates & -candidates).bit_length() - 1

    def _run_bits(self, mask: int, length: int) -> int:
        """Bit i set iff bytes i .. i+length-1 of the string are all in ``mask``."""
        cached = self._bits.get((mask, length))
        if cached is not None:
            return cached
        if length == 1:
            bits = int(self.string.translate(_bit_table(mask))[::-1], 2)
        else:
            half = length // 2
            bits = self._run_bits(mask, half)
            bits &= self._run_bits(mask, length - half) >> half
        self._bits[(mask, length)] = bits
        return bits


# --- matchers -----------------------------------------------------------------------------


def _is_text(masks: Masks) -> bool:
    return all(mask & (mask - 1) == 0 for mask in masks)


def _text(masks: Masks) -> bytes:
    return bytes(mask.bit_length() - 1 for mask in masks)


def _fast_path(shape: _Shape) -> Matcher | None:
    """Plain-text shapes that need no regex: ``abc``, ``*``, ``abc*``, ``*abc``, ``*abc*``."""
    if len(shape.middles) > 1 or not all(_is_text(masks) for masks in shape.all_masks()):
        return None
    head, tail = _text(shape.head), _text(shape.tail or ())
    if shape.tail is None:
        return head.__eq__
    if shape.middles:
        ((masks, count),) = shape.middles
        if head or tail or count > 1:
            return None
        middle = _text(masks)
        return lambda string: middle in string
    if not head and not tail:
        return bool  # stars only: anything but the empty string
    if not tail:
        return lambda string: string.startswith(head)
    if not head:
        return lambda string: string.endswith(tail)
    least = len(head) + len(tail)
    return lambda string: len(string) >= least and string.startswith(head) and string.endswith(tail)


def _regex_path(shape: _Shape) -> Matcher | None:
    """One regex for small patterns, atomic groups committing each middle segment leftmost.

    Segments are at most ``_SHORT_SEGMENT`` long, so the engine spends at most that many
    steps per string position and segment and never re-enters a committed group:
    O(len(string) * _SHORT_SEGMENT) whatever the input, no exponential backtracking.
    """
    middles = [masks for masks, count in shape.middles for _ in range(min(count, _REGEX_TOKENS))]
    segments = [shape.head, *middles, shape.tail or ()]
    if sum(len(masks) + 1 for masks in segments) > _REGEX_TOKENS:
        return None
    if any(len(masks) > _SHORT_SEGMENT for masks in segments):
        return None
    sources = [b"".join(_class_source(mask) for mask in masks) for masks in segments]
    parts = [sources[0], *(b"(?>.*?" + source + b")" for source in sources[1:-1])]
    if shape.tail is not None:
        parts.append(b".*" + sources[-1])
    regex = re.compile(b"".join(parts), re.DOTALL)
    return lambda string: bool(string) and regex.fullmatch(string) is not None


class _SegmentMatcher:
    """The general matcher for large patterns: anchored ends, greedy leftmost middles."""

    def __init__(self, shape: _Shape) -> None:
        self.has_star = shape.tail is not None
        self.head = _segment(shape.head)
        self.tail = _segment(shape.tail or ())
        self.middles: list[tuple[int, _Segment, int]] = []  # (skip first, segment, repeats)
        skip = 0
        for masks, count in shape.middles:
            segment = _segment(masks)
            if segment.kind == "any":  # ``*?*`` only needs one more byte somewhere
                skip += segment.size * count
            else:
                self.middles.append((skip, segment, count))
                skip = 0
        self.trailing_skip = skip
        self.min_size = self.head.size + self.tail.size + skip
        self.min_size += sum(seg.size * count + gap for gap, seg, count in self.middles)

    def __call__(self, string: bytes) -> bool:
        size = len(string)
        if size < self.min_size or not string:
            return False
        probe = _Probe(string)
        if not self.head.match_at(probe, 0):
            return False
        if not self.has_star:
            return size == self.head.size
        end = size - self.tail.size
        if not self.tail.match_at(probe, end):
            return False
        pos = self.head.size
        for skip, segment, count in self.middles:
            pos += skip
            for _ in range(count):
                pos = segment.find(probe, pos, end)
                if pos < 0:
                    return False
                pos += segment.size
        return pos + self.trailing_skip <= end
