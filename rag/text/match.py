"""Quote matching, in one place: find a quote or a cleaned fragment in text that differs from it
in script (traditional/simplified), width (ＡＢ１２/AB12), case, whitespace (OCR and HTML line
breaks inside sentences) and, for fragments, punctuation (the cleaner normalises it).

Everything goes through one key, `match_key`: the text with the ignorable characters removed
and the rest folded, plus for each key character the index of the text character it came from,
so a match in key space maps back to the exact original span. Folding is per character (NFKC,
lower case; a character NFKC expands, such as ㈠ → (一), yields several key characters with the
same index) followed by OpenCC t2s over the whole key, so phrase-level conversions apply
(乾淨 → 干净); when t2s would change the key's length, characters are converted one by one so
the map stays exact.

Three searches use it:
- `align(fragment, original)`: citations (rag.cite.resolve) — punctuation-free key, difflib fallback for
  OCR repairs, (start, end, score);
- `locate_quote(text, quote, start)`: evaluation evidence (rag.evaluate.metrics) — exact, then
  whitespace-free, then also folded;
- `find_quote(passage, quote)`: highlighting in the web chat (ui.render) — as `locate_quote`,
  with the quote's trailing sentence punctuation optional.
"""

from __future__ import annotations

import difflib
import unicodedata
from functools import lru_cache
from typing import Sequence

from rag.text.norm import fold_width, t2s

# What a matched span may be extended by: the sentence's own closing punctuation in the original.
_CLOSING = "。！？!?；;…”」』）)"
_FULL_STOPS = "。！？!?"
# The quote's trailing punctuation `find_quote` may drop (a highlighted sentence without its 。).
_OPTIONAL_TAIL = "。！？!?；;，,."


@lru_cache(maxsize=16)
def _key(text: str, fold: bool, keep_punct: bool) -> tuple[str, tuple[int, ...]]:
    # cached: evaluation looks up many quotes in one document text
    chars: list[str] = []
    idx: list[int] = []
    for i, ch in enumerate(text):
        for c in fold_width(ch).lower() if fold else ch:
            if c.isspace() if keep_punct else unicodedata.category(c)[0] in "PSZC":
                continue
            chars.append(c)
            idx.append(i)
    k = "".join(chars)
    if fold:
        s = t2s(k)
        if len(s) != len(k):
            s = "".join(t2s(c) if len(t2s(c)) == 1 else c for c in k)
        k = s
    return k, tuple(idx)


def match_key(text: str, *, fold: bool = True, keep_punct: bool = False) -> tuple[str, Sequence[int]]:
    """The matching key of `text` and, for each key character, its index in `text`.

    Whitespace is always dropped; punctuation, symbols and control characters too unless
    `keep_punct`; with `fold`, script, width and case are folded.

    >>> match_key("東北 網，ＡＩ")
    ('东北网ai', (0, 1, 3, 5, 6))
    >>> match_key("東北 網，ＡＩ", fold=False, keep_punct=True)
    ('東北網，ＡＩ', (0, 1, 3, 4, 5, 6))
    """
    return _key(text, fold, keep_punct)


def _span(idx: Sequence[int], j: int, n: int) -> tuple[int, int]:
    """The original span of key characters j .. j+n-1."""
    return idx[j], idx[j + n - 1] + 1


def _densest_window(ok: str, fk: str) -> tuple[int, int, float] | None:
    """difflib fallback of `align`: (key start, key end, score) of the matching blocks around the
    longest one that stay within a fragment-sized stretch of `ok`; None below half the fragment."""
    sm = difflib.SequenceMatcher(None, ok, fk, autojunk=False)
    blocks = [blk for blk in sm.get_matching_blocks() if blk.size >= 2]
    if not blocks:
        return None
    main = max(blocks, key=lambda blk: blk.size)
    lo, hi = main.a, main.a + main.size
    matched = main.size
    for blk in blocks:
        if blk is main:
            continue
        nlo, nhi = min(lo, blk.a), max(hi, blk.a + blk.size)
        if nhi - nlo <= len(fk) * 1.5:
            lo, hi, matched = nlo, nhi, matched + blk.size
    score = matched / len(fk)
    return (lo, hi, score) if score >= 0.5 else None


def align(fragment: str, original: str) -> tuple[int, int, float] | None:
    """Where `fragment` (cleaned text) occurs in `original`: (start, end, score) with
    `original[start:end]` the exact original characters; score 1.0 for an exact key match,
    else difflib's match ratio (when cleaning repaired OCR characters). None when nothing
    plausible matches. The sentence's closing punctuation right after the match is included.

    >>> o = "按照要求，我們以『解放思想』為主題。\\n  下一段"
    >>> a, b, s = align("我们以“解放思想”为主题。", o); (o[a:b], s)
    ('我們以『解放思想』為主題。', 1.0)
    >>> align("完全无关", o) is None
    True
    >>> t = "2009 | 11579 | 3.9%\\n2010"; a, b, _ = align("2009 | 11579 | 3.9%", t); t[a:b]
    '2009 | 11579 | 3.9%'
    """
    fk, _ = match_key(fragment)
    ok, omap = match_key(original)
    if not fk or not ok:
        return None
    i = ok.find(fk)
    if i >= 0:
        (a, b), score = _span(omap, i, len(fk)), 1.0
    else:
        window = _densest_window(ok, fk)
        if window is None:
            return None
        lo, hi, score = window
        a, b = _span(omap, lo, hi - lo)
    # the fragment's own trailing symbols ("3.9%", "第5条）") when the original has them right after
    tail = len(fragment.rstrip()) - len(fragment.rstrip().rstrip("%％‰℃°）)】」』”’\"'"))
    if tail and score == 1.0 and original[b : b + tail] == fragment.rstrip()[-tail:]:
        b += tail
    # keep the sentence's own closing punctuation when the original has it right after
    while b < len(original) and unicodedata.category(original[b])[0] == "P" and original[b] in _CLOSING:
        b += 1
        if original[b - 1] in _FULL_STOPS:
            break
    return a, b, score


def locate_quote(
    text: str, quote: str, start: int | None = None, *, optional_tail: str = ""
) -> tuple[int, int] | None:
    """The [start, end) span of `quote` in `text`, or None.

    Tries the recorded `start`, then an exact search, then a search that ignores whitespace
    (line breaks in OCR text), then one that also folds script and width. Characters of
    `optional_tail` at the end of the quote may be missing from `text` in the last two.

    >>> locate_quote("甲乙丙丁乙丙", "乙丙", start=4), locate_quote("甲乙丙丁", "乙丙")
    ((4, 6), (1, 3))
    >>> locate_quote("第一\\n章 總則", "第一章总则")
    (0, 7)
    >>> locate_quote("總則", "总则。"), locate_quote("總則", "总则。", optional_tail="。")
    (None, (0, 2))
    """
    if not quote:
        return None
    if start is not None and 0 <= start and text[start : start + len(quote)] == quote:
        return start, start + len(quote)
    i = text.find(quote)
    if i >= 0:
        return i, i + len(quote)
    variants = [quote]
    if optional_tail and quote.rstrip(optional_tail) not in ("", quote):
        variants.append(quote.rstrip(optional_tail))
    for fold in (False, True):
        t, idx = match_key(text, fold=fold, keep_punct=True)
        for v in variants:
            q, _ = match_key(v, fold=fold, keep_punct=True)
            j = t.find(q) if q else -1
            if j >= 0:
                return _span(idx, j, len(q))
    return None


def find_quote(passage: str, quote: str) -> tuple[int, int] | None:
    """Where `quote` sits in `passage` as a [start, end) span, or None: `locate_quote` on the
    stripped quote, its trailing sentence punctuation optional.

    >>> find_quote("甲乙。丙 丁。", "丙丁。")
    (3, 7)
    >>> find_quote("東北網報道。", "东北网报道")
    (0, 5)
    >>> find_quote("關鍵在縣一級", " 关键在县一级。")
    (0, 6)
    """
    q = (quote or "").strip()
    if not q or not passage:
        return None
    return locate_quote(passage, q, optional_tail=_OPTIONAL_TAIL)
