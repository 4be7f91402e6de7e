"""Re-joining lines broken mid-sentence (PDF text layers, OCR, hard-wrapped text): whether two
neighbouring lines are one sentence (`should_join`), the wrap width of a document
(`wrap_width`), and whether a break splits a word (`splits_word`, checked with jieba). Used by
rag.ingest.clean.

Compromise: a line that is short and unpunctuated may be a heading and is never glued to its
neighbour unless the break splits a word.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rag.chunk.headings import heading_marker, is_bullet, is_label_line, is_title_candidate

HAS_CJK = re.compile(r"[\u3400-\u9fff]")  # a CJK ideograph (also rag.ingest.repair: OCR quotes only in Chinese lines)

# ---------------------------------------------------------------------------------------------
# re-joining lines broken mid-sentence

_TERMINAL_END = re.compile(r"[。！？；…!?;:：][”’」』）)】》〉\"']*$")
_OPEN_END = re.compile(r"[，,、（(“‘《「『〈\[【—-]$")
SENT_INSIDE = re.compile(r"[。！？!?]")  # a sentence end (not ；: OCR often reads ： as ；); also rag.ingest.clean
_NO_LINE_START = re.compile(r"^[，。、；：？！）》」』”’,.;:?!)\]】]")
_PAIRS = (("“", "”"), ("（", "）"), ("(", ")"), ("《", "》"), ("「", "」"), ("『", "』"), ("‘", "’"))
LONG_LINE = 50  # a line this long that ends mid-sentence was wrapped, not ended


@lru_cache(maxsize=1)
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def splits_word(left: str, right: str) -> bool:
    """True if the break between `left` and `right` falls inside a Chinese word (segmented
    by jieba on a few characters of context), e.g. '…的画' | '面' or '每位党' | '员干部'."""
    if not left or not right or not (HAS_CJK.match(left[-1]) and HAS_CJK.match(right[0])):
        return False
    l, r = left[-4:], right[:4]
    pos = 0
    for tok in _jieba().lcut(l + r, HMM=False):
        end = pos + len(tok)
        if pos < len(l) < end and len(tok) >= 2:
            return True
        pos = end
        if pos >= len(l):
            break
    return False


def _unbalanced(s: str) -> bool:
    return any(s.count(a) > s.count(b) for a, b in _PAIRS)


def wrap_width(lengths: list[int]) -> int | None:
    """The width a text was wrapped at (PDF text layers, OCR, hard-wrapped .txt), if it was:
    the 80th-percentile line length, when at least 30% of the lines are about that long.

    >>> wrap_width([38, 37, 38, 12, 38, 36, 20, 38, 38, 9]), wrap_width([300, 12, 640, 80, 15, 220, 9, 31])
    (38, None)
    """
    lens = sorted(lengths)
    n = len(lens)
    if n < 6:
        return None
    p = lens[int(0.8 * (n - 1))]
    if p < 12 or n < 8:
        return None
    near = sum(1 for x in lens if 0.9 * p <= x <= 1.05 * p)
    return p if near >= 0.4 * n else None


def should_join(prev: str, nxt: str, width: int | None = None, prev_len: int | None = None) -> bool:
    """Is `nxt` the continuation of `prev` (one sentence broken over two lines)?

    Never when `prev` ends a sentence (。！？；…:) or is a heading, or `nxt` starts a heading,
    a bullet, a table row or a `label:` line. Otherwise yes when the break shows: `prev` ends
    with an opening/continuing mark (，、“《…), has an open quote/bracket, has a sentence end
    inside but not at its end, contains a comma, is long (≥ LONG_LINE), `nxt` starts with
    punctuation that cannot start a line, or the break splits a word. Short unpunctuated lines
    (possible headings) join only when the break splits a word.
    """
    if not prev or not nxt:
        return False
    if _TERMINAL_END.search(prev):
        return False
    if nxt.startswith(("|", "#", "```")) or prev.startswith(("|", "#", "```")):
        return False
    if " | " in prev or " | " in nxt:  # table rows (rag.ingest.tables form) are lines of their own
        return False
    if heading_marker(nxt) or is_bullet(nxt) or is_label_line(nxt):
        return False
    if _NO_LINE_START.match(nxt):
        return True
    hm = heading_marker(prev)
    if hm is not None and hm.whole_line:
        return False
    if width and (prev_len if prev_len is not None else len(prev)) >= 0.85 * width:
        return True  # a full-width line that does not end a sentence was wrapped
    if is_title_candidate(prev) or is_title_candidate(nxt):
        # either side may be a heading: only a word split across the break proves a wrap
        return splits_word(prev, nxt)
    return bool(
        _OPEN_END.search(prev)
        or _unbalanced(prev)
        or SENT_INSIDE.search(prev)
        or "，" in prev
        or "," in prev
        or len(prev) >= LONG_LINE
        or splits_word(prev, nxt)
    )
