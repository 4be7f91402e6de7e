"""Citations: parse the answer's markers, resolve them to passages, check that each cited
statement is supported, and locate the quoted sentence in the *original* file.

Pipeline (all pure functions; the only I/O is the optional `text_source` callback that returns
a document's original text):

    parse_markers(text)            【1】 [1] 【1,2】 【1-3】 [1][2] → Marker(start, end, numbers)
    statements(text)               each marker group with the statement it closes
    support(statement, passage)    character-bigram recall after script normalisation, in [0, 1]
    resolve(text, passages, ...)   → (clean text, citations)

Decisions (consistent everywhere, also documented in docs/INTERFACES.md's answering section):
- Out-of-range markers (no such passage) are removed from the text and produce no citation.
- In-range markers whose statement is not supported by the passage (support < threshold) are
  removed from the shown text; their `Citation` is still returned with `supported=False` so the
  support score is recorded (eval measures citation precision with it) — the UI and reports
  only show `supported` ones.
- All marker forms are rewritten to the canonical 【n】, one bracket per passage.

Support is character-bigram *recall* of the statement against the passage: Chinese has no
spaces, and bigrams of the normalised (simplified, NFKC, punctuation-free) text are the
standard script-robust lexical unit (as in CMRC-style character metrics). Recall, not F1,
because a short statement legitimately cites a long passage. An optional `similarity`
callback (e.g. multilingual embeddings) lets a cross-lingual answer (English answer, Chinese
document) be supported too; the score is then the max of both.

Quotes: `Chunk.text` is cleaned text, but a citation must quote the exact characters of the
user's file. The best-supporting sentence is found in the chunk's cleaned text and then aligned
back into `original[chunk.start:chunk.end]` on a normalised key (script-folded, punctuation and
whitespace removed) that keeps a per-character map to the original offsets; when cleaning
repaired characters (OCR) so that no exact key match exists, difflib aligns the closest window.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

from rag.textnorm import fold_width, normalize_answer, t2s
from rag.types import Chunk, Citation, Hit

# 【1】 [1] ［1］ 【1,2】 【1，2】 【1、2】 【1-3】 【1–3】 【1~3】; up to 4 digits per number so a bracketed
# year like [2010] is parsed too (and then dropped as out of range rather than shown as a citation).
_NUM_LIST = r"\d{1,4}(?:\s*(?:[,，、;；]|[-–—~～])\s*\d{1,4})*"
_MARKER = re.compile(r"[【\[［]\s*(" + _NUM_LIST + r")\s*[】\]］]")
_RANGE = re.compile(r"(\d+)\s*[-–—~～]\s*(\d+)")
_MAX_RANGE = 20  # 【1-3】 expands; a "range" wider than this is not a citation
_SENT_END = "。！？!?\n"
_TRIM = " \t\r\n　，,、；;：:"


@dataclass(frozen=True)
class Marker:
    """One bracketed marker in the answer text. `numbers` are the passage numbers it names.

    >>> parse_markers("甲【1】乙[2][3]丙【1-3】丁【1，4】")[2]
    Marker(start=8, end=11, numbers=(3,), raw='[3]')
    """

    start: int
    end: int
    numbers: tuple[int, ...]
    raw: str


def _expand(spec: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in re.split(r"\s*[,，、;；]\s*", spec.strip()):
        m = _RANGE.fullmatch(part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if a <= b and b - a < _MAX_RANGE:
                out.extend(range(a, b + 1))
            else:  # reversed or absurd range: keep the endpoints, range checking drops them later
                out.extend([a, b])
        elif part.isdigit():
            out.append(int(part))
    seen: list[int] = []
    for n in out:
        if n not in seen:
            seen.append(n)
    return tuple(seen)


def parse_markers(text: str) -> list[Marker]:
    """All citation markers in `text`, in order.

    >>> [m.numbers for m in parse_markers("A【1】B[2][3]C【1,2】D【1-3】E［4］")]
    [(1,), (2,), (3,), (1, 2), (1, 2, 3), (4,)]
    >>> parse_markers("没有标记")
    []
    """
    return [Marker(m.start(), m.end(), _expand(m.group(1)), m.group(0)) for m in _MARKER.finditer(text)]


def strip_markers(text: str) -> str:
    """Remove every marker. `strip_markers("甲【1】乙[2]。") == "甲乙。"`"""
    return _MARKER.sub("", text)


@dataclass(frozen=True)
class Statement:
    """The text a marker group closes, with the group's markers (adjacent markers form a group).

    `start`/`end` delimit the statement text; `group_start`/`group_end` the markers after it.
    """

    text: str
    start: int
    end: int
    group_start: int
    group_end: int
    markers: tuple[Marker, ...]

    @property
    def numbers(self) -> tuple[int, ...]:
        seen: list[int] = []
        for m in self.markers:
            for n in m.numbers:
                if n not in seen:
                    seen.append(n)
        return tuple(seen)


def statements(text: str) -> list[Statement]:
    """Group adjacent markers and attach to each group the statement before it: the text back
    to the previous marker group or sentence end, whichever is nearer.

    >>> [(s.text, s.numbers) for s in statements("甲是一。乙是二【1】。丙是三[2][3]")]
    [('乙是二', (1,)), ('丙是三', (2, 3))]
    >>> [(s.text, s.numbers) for s in statements("成立于2010年。【2】")]
    [('成立于2010年', (2,))]
    >>> [(s.text, s.numbers) for s in statements("成立于2010年【1】。【2】")]
    [('成立于2010年', (1,)), ('成立于2010年', (2,))]
    """
    marks = parse_markers(text)
    groups: list[list[Marker]] = []
    for m in marks:
        if groups and not text[groups[-1][-1].end : m.start].strip():
            groups[-1].append(m)
        else:
            groups.append([m])
    out: list[Statement] = []
    prev_end = 0
    for g in groups:
        gs, ge = g[0].start, g[-1].end
        seg_end = gs
        # the statement ends before the group, ignoring trailing punctuation ("……措施。【1】")
        while seg_end > prev_end and text[seg_end - 1] in _TRIM + _SENT_END.replace("\n", "") + "。":
            seg_end -= 1
        seg_start = prev_end
        for i in range(seg_end - 1, prev_end - 1, -1):
            if text[i] in _SENT_END:
                seg_start = i + 1
                break
        while seg_start < seg_end and text[seg_start] in _TRIM:
            seg_start += 1
        if seg_start >= seg_end and out:
            # only punctuation since the previous group ("关键【1】。【2】"): the marker adds a
            # source to the previous statement instead of citing an empty one
            seg_start, seg_end = out[-1].start, out[-1].end
        out.append(Statement(text[seg_start:seg_end], seg_start, seg_end, gs, ge, tuple(g)))
        prev_end = ge
    return out


# ---------------------------------------------------------------- lexical support


def bigrams(text: str) -> set[str]:
    """Character bigrams of the metric form (simplified, half-width, lower, no punctuation or
    whitespace); a single character counts as its own gram.

    >>> sorted(bigrams("東北網，AI"))
    ['ai', '东北', '北网', '网a']
    >>> sorted(bigrams("好"))
    ['好']
    """
    t = normalize_answer(text)
    if len(t) == 1:
        return {t}
    return {t[i : i + 2] for i in range(len(t) - 1)}


def support(statement: str, passage: str) -> float:
    """Share of the statement's bigrams found in the passage (script-insensitive), in [0, 1].

    >>> support("安达市有六学措施", "我們實施了『六學』措施，確保安達市……")  # 安达 达市 六学 学措 措施 of 7
    0.7142857142857143
    >>> support("", "任何") , support("完全无关", "东北网")
    (0.0, 0.0)
    """
    s = bigrams(strip_markers(statement))
    if not s:
        return 0.0
    p = bigrams(passage)
    return len(s & p) / len(s)


# ---------------------------------------------------------------- passages


@dataclass(frozen=True)
class Passage:
    """A numbered evidence block 【n】: one chunk, or adjacent chunks of one document merged in
    reading order. `parts[i] = (chunk, offset)`: chunk i's text starts at `text[offset:]`
    (overlapping sentences between neighbours are kept once, so offsets are exact).
    `hit` is the block as one Hit (for display and the Evidence event)."""

    n: int
    hit: Hit
    parts: tuple[tuple[Chunk, int], ...]
    text: str

    @classmethod
    def from_hit(cls, n: int, hit: Hit) -> "Passage":
        return cls(n, hit, ((hit.chunk, 0),), hit.chunk.text)

    @property
    def chunk(self) -> Chunk:
        return self.hit.chunk

    def locate(self, pos: int) -> tuple[Chunk, int]:
        """The chunk holding character `pos` of `text`, and `pos` relative to that chunk's text."""
        best = self.parts[0]
        for ch, off in self.parts:
            if off <= pos:
                best = (ch, off)
        ch, off = best
        return ch, pos - off


def merge_text(a: str, b: str, max_overlap: int = 400) -> tuple[str, int]:
    """Join two consecutive chunk texts, dropping the overlap (a suffix of `a` repeated at the
    start of `b`, as the chunker's sentence overlap makes). Returns (joined, offset of b).

    >>> merge_text("一句。二句。", "二句。三句。")
    ('一句。二句。三句。', 3)
    >>> merge_text("甲。", "乙。")
    ('甲。\\n乙。', 3)
    """
    lim = min(len(a), len(b), max_overlap)
    for k in range(lim, 0, -1):
        if a.endswith(b[:k]):
            if k >= 2 or not b[:k].strip():
                return a + b[k:], len(a) - k
    return a + "\n" + b, len(a) + 1


# ---------------------------------------------------------------- quotes


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of `text` (uses rag.chunking's Chinese sentence splitter, then finds each
    sentence in `text` so spans are exact). Spans are trimmed of surrounding whitespace.

    >>> t = "第一句。第二句！"
    >>> [t[a:b] for a, b in split_sentences(t)]
    ['第一句。', '第二句！']
    """
    from rag.chunking import split_sentences as _split

    spans: list[tuple[int, int]] = []
    pos = 0
    for s in _split(text):
        s = s.strip()
        if not s:
            continue
        i = text.find(s, pos)
        if i < 0:  # the splitter normalised something; fall back to a fresh search
            i = text.find(s)
            if i < 0:
                continue
        spans.append((i, i + len(s)))
        pos = i + len(s)
    if not spans and text.strip():
        a = len(text) - len(text.lstrip())
        spans.append((a, len(text.rstrip())))
    return spans


def _key(text: str) -> tuple[str, list[int]]:
    """Matching key of `text` and, for each key character, its index in `text`.

    Per-character NFKC + lower (so the map stays exact), then OpenCC t2s on the whole key when
    it preserves length (it nearly always does; phrase conversions that change length fall back
    to per-character conversion)."""
    chars: list[str] = []
    idx: list[int] = []
    for i, ch in enumerate(text):
        for c in fold_width(ch).lower():
            if unicodedata.category(c)[0] not in "PSZC":
                chars.append(c)
                idx.append(i)
    k = "".join(chars)
    s = t2s(k)
    if len(s) != len(k):
        s = "".join(t2s(c) if len(t2s(c)) == 1 else c for c in k)
    return s, idx


def align(fragment: str, original: str) -> tuple[int, int, float] | None:
    """Where `fragment` (cleaned text) occurs in `original`: (start, end, score) with
    `original[start:end]` the exact original characters; score 1.0 for an exact key match,
    else difflib's match ratio. None when nothing plausible matches.

    >>> o = "按照要求，我們以『解放思想』為主題。\\n  下一段"
    >>> a, b, s = align("我们以“解放思想”为主题。", o); (o[a:b], s)
    ('我們以『解放思想』為主題。', 1.0)
    """
    fk, _ = _key(fragment)
    if not fk:
        return None
    ok, omap = _key(original)
    if not ok:
        return None
    i = ok.find(fk)
    if i >= 0:
        a, b = omap[i], omap[i + len(fk) - 1] + 1
        score = 1.0
    else:
        sm = difflib.SequenceMatcher(None, ok, fk, autojunk=False)
        blocks = [blk for blk in sm.get_matching_blocks() if blk.size >= 2]
        if not blocks:
            return None
        # the densest window: the matching blocks around the longest one that stay within a
        # fragment-sized stretch of the original
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
        if score < 0.5:
            return None
        a, b = omap[lo], omap[hi - 1] + 1
    # keep the sentence's own closing punctuation when the original has it right after
    while b < len(original) and unicodedata.category(original[b])[0] == "P" and original[b] in "。！？!?；;…”」』）)":
        b += 1
        if original[b - 1] in "。！？!?":
            break
    return a, b, score


def best_sentence(statement: str, text: str) -> tuple[int, int, float]:
    """The sentence of `text` that best supports `statement`: (start, end, support).
    Ties go to the earlier sentence.

    >>> t = "局内设8个股室。现有干部职工68人，其中党员32人。"
    >>> a, b, s = best_sentence("有68名干部职工", t); t[a:b]
    '现有干部职工68人，其中党员32人。'
    """
    best = (0, len(text), -1.0)
    st = bigrams(strip_markers(statement))
    for a, b in split_sentences(text):
        sg = bigrams(text[a:b])
        score = len(st & sg) / len(st) if st else 0.0
        if score > best[2]:
            best = (a, b, score)
    return best


TextSource = Callable[[Chunk], "str | None"]
"""Returns the original text of the chunk's document (the string `chunk.start:chunk.end` index
into), or None when it is not available."""


def quote_for(chunk: Chunk, a: int, b: int, text_source: TextSource | None) -> tuple[str, int, int, bool]:
    """Exact original characters and span for `chunk.text[a:b]`: (quote, start, end, exact).
    Without the original text, the cleaned sentence and the chunk's span are returned
    (exact=False)."""
    frag = chunk.text[a:b]
    original = text_source(chunk) if text_source else None
    if original:
        region = original[chunk.start : chunk.end]
        hit = align(frag, region)
        if hit:
            s, e, _ = hit
            return region[s:e], chunk.start + s, chunk.start + e, True
    return frag, chunk.start, chunk.end, False


# ---------------------------------------------------------------- resolve


def _as_passages(items: Sequence[Passage | Hit]) -> list[Passage]:
    return [it if isinstance(it, Passage) else Passage.from_hit(i + 1, it) for i, it in enumerate(items)]


def cite_one(
    n: int,
    statement: str,
    passage: Passage,
    *,
    threshold: float,
    text_source: TextSource | None = None,
    similarity: Callable[[str, str], float] | None = None,
    extra: Mapping | None = None,
) -> Citation:
    """Check `statement` against `passage` and build its Citation (quote = best sentence)."""
    score = support(statement, passage.text)
    a, b, _ = best_sentence(statement, passage.text)
    if similarity is not None:
        try:
            score = max(score, float(similarity(strip_markers(statement), passage.text[a:b])))
        except Exception:  # an embedding failure must not lose the answer; lexical score stands
            pass
    # map the sentence (in the merged text) to its chunk and the chunk-relative span
    chunk, rel_a = passage.locate(a)
    rel_b = min(len(chunk.text), rel_a + (b - a))
    quote, qs, qe, exact = quote_for(chunk, rel_a, rel_b, text_source)
    meta = dict(chunk.metadata)
    meta["quote_exact"] = exact
    if extra:
        meta.update(extra)
    return Citation(
        n=n,
        chunk_id=chunk.chunk_id,
        doc_id=chunk.doc_id,
        title=chunk.title,
        section=tuple(chunk.section),
        source=chunk.source,
        start=chunk.start,
        end=chunk.end,
        quote=quote,
        quote_start=qs,
        quote_end=qe,
        support=round(score, 4),
        supported=score >= threshold,
        statement=strip_markers(statement).strip(),
        metadata=meta,
    )


def resolve(
    text: str,
    passages: Sequence[Passage | Hit],
    *,
    threshold: float = 0.35,
    text_source: TextSource | None = None,
    similarity: Callable[[str, str], float] | None = None,
    attribute_uncited: bool = False,
) -> tuple[str, list[Citation]]:
    """Resolve the markers of an answer against the numbered passages (passages[i] is 【i+1】
    unless Passage objects with their own `n` are given).

    Returns the shown text (only supported markers, canonical 【n】 form) and one Citation per
    (marker group, passage number), supported or not. With `attribute_uncited`, sentences that
    carry no marker but are clearly supported by a passage (support ≥ max(threshold, 0.6)) get
    one, flagged `metadata["auto"] = True` — small local models often forget markers.

    >>> from rag.types import Chunk, Hit
    >>> c = Chunk("d#0", "d", 0, "标题", (), "该局现有干部职工68人。", 0, 12)
    >>> resolve("干部职工68人[1]，另有[7]。", [Hit(c, 1.0, 1)])[0]
    '干部职工68人【1】，另有。'
    >>> resolve("现有干部职工68人【1】。【1】", [Hit(c, 1.0, 1)])[0]
    '现有干部职工68人【1】。'
    """
    ps = _as_passages(passages)
    by_n = {p.n: p for p in ps}
    out: list[str] = []
    cites: list[Citation] = []
    seen: set[tuple[int, int, int]] = set()
    pos = 0
    for st in statements(text):
        out.append(text[pos : st.group_start])
        kept: list[int] = []
        for n in st.numbers:
            p = by_n.get(n)
            if p is None:
                continue  # out of range: dropped silently (a model hallucinating a source)
            if (n, st.start, st.end) in seen:
                continue  # the same source repeated for the same statement ("…【1】。【1】")
            seen.add((n, st.start, st.end))
            c = cite_one(n, st.text, p, threshold=threshold, text_source=text_source, similarity=similarity)
            cites.append(c)
            if c.supported:
                kept.append(n)
        if kept:
            out.append("".join(f"【{n}】" for n in kept))
        else:
            # nothing valid: drop the group and the space before it ("答案 [9]" → "答案")
            while out and out[-1] and out[-1][-1] in " \t":
                out[-1] = out[-1][:-1]
        pos = st.group_end
    out.append(text[pos:])
    shown = "".join(out)
    if attribute_uncited and ps:
        shown, extra = _attribute(shown, ps, threshold=threshold, text_source=text_source)
        cites.extend(extra)
    return shown, cites



def _attribute(
    text: str, ps: Sequence[Passage], *, threshold: float, text_source: TextSource | None
) -> tuple[str, list[Citation]]:
    """Add a marker to uncited sentences that one passage clearly supports."""
    need = max(threshold, 0.6)
    spans = _answer_sentences(text)
    out: list[str] = []
    cites: list[Citation] = []
    pos = 0
    for a, b in spans:
        sent = text[a:b]
        if parse_markers(sent) or len(normalize_answer(sent)) < 6:
            continue
        scored = [(support(sent, p.text), p) for p in ps]
        score, p = max(scored, key=lambda t: t[0])
        if score < need:
            continue
        c = cite_one(p.n, sent, p, threshold=threshold, text_source=text_source, extra={"auto": True})
        cites.append(c)
        # insert before the sentence's closing punctuation
        e = b
        while e > a and text[e - 1] in "。！？!?；;":
            e -= 1
        out.append(text[pos:e])
        out.append(f"【{p.n}】")
        pos = e
    out.append(text[pos:])
    return "".join(out), cites


def _answer_sentences(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for m in re.finditer(r"[。！？!?\n]+", text):
        spans.append((start, m.end()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def grounded(citations: Iterable[Citation]) -> bool:
    """An answer is grounded when at least one citation is valid and supported."""
    return any(c.supported for c in citations)
