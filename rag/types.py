"""Core types that cross every stage: ingest → chunk → index → retrieve → answer → cite → UI/eval.

No I/O here. A `Chunk` made by the chunker travels unchanged to the index, the retriever, the
citation and the UI, so everything a citation needs (document, section path, span in the
original file) is on it.

Offsets: every `start`/`end` is a character offset (Python `str` index, end exclusive) into
`Document.text`, the *original* decoded file text, so a user can find the exact characters in
their own file. Cleaned text (boilerplate removed, OCR repaired) is what is shown and matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class Document:
    """One ingested file (or one part of a container file).

    `clean` is the cleaned text; `offsets[i]` is the index in `text` of `clean[i]`
    (len(offsets) == len(clean)). Characters inserted by cleaning (e.g. a normalised
    quotation mark) map to the original character they replace.
    """

    doc_id: str  # stable: derived from the path relative to the indexed root, e.g. "000_dc80a8aaf43bbf11"
    source: str  # path of the file as given (relative to the indexed root when possible)
    title: str
    text: str  # original decoded text
    clean: str
    offsets: Sequence[int]
    metadata: Mapping[str, Any] = field(default_factory=dict)  # date, source_name, author, format, encoding, sha256

    def orig_span(self, clean_start: int, clean_end: int) -> tuple[int, int]:
        """Map a [start, end) span of `clean` to the covering span of `text`.

        >>> d = Document("d", "d.txt", "t", "a\\nb", "ab", (0, 2))
        >>> d.orig_span(0, 2)
        (0, 3)
        """
        if clean_end <= clean_start:
            pos = self.offsets[clean_start] if clean_start < len(self.offsets) else len(self.text)
            return pos, pos
        return self.offsets[clean_start], self.offsets[clean_end - 1] + 1


@dataclass(frozen=True)
class Chunk:
    """A passage: the unit that is indexed, retrieved, cited and shown.

    chunk_id is `f"{doc_id}#{n}"` and stable across rebuilds of the same document.
    `text` is cleaned text; `start`/`end` is its span in the original file.
    `section` is the heading path above the chunk, outermost first (may be empty).
    """

    chunk_id: str
    doc_id: str
    n: int
    title: str
    section: tuple[str, ...]
    text: str
    start: int
    end: int
    source: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def heading(self) -> str:
        """Title and section path as one line, e.g. `标题 › 一、… › (一)…`."""
        parts = [self.title, *self.section]
        return " › ".join(p for p in parts if p)

    @property
    def embed_text(self) -> str:
        """What the embedder and BM25 see: headings travel with the text."""
        h = self.heading
        return f"{h}\n{self.text}" if h else self.text

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "n": self.n,
            "title": self.title,
            "section": list(self.section),
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "source": self.source,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Chunk":
        return cls(
            chunk_id=d["chunk_id"],
            doc_id=d["doc_id"],
            n=int(d["n"]),
            title=d.get("title", ""),
            section=tuple(d.get("section", ())),
            text=d["text"],
            start=int(d["start"]),
            end=int(d["end"]),
            source=d.get("source", ""),
            metadata=dict(d.get("metadata", {})),
        )


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk. `ranks`/`scores` hold each retriever's own rank (1-based) and score,
    e.g. {"dense": 3, "bm25": 1}; a retriever that did not return the chunk is absent."""

    chunk: Chunk
    score: float
    rank: int
    ranks: Mapping[str, int] = field(default_factory=dict)
    scores: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": self.score,
            "ranks": dict(self.ranks),
            "scores": dict(self.scores),
            **self.chunk.to_dict(),
        }


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


@dataclass(frozen=True)
class Citation:
    """What an answer's 【n】 marker points to, after checking.

    `start`/`end`: the chunk's span in the original file; `quote_start`/`quote_end`: the quoted
    sentence's span in the original file (inside the chunk's span). `support` in [0, 1] is the
    checked support of the cited statement by the passage; `supported` is the decision.
    """

    n: int
    chunk_id: str
    doc_id: str
    title: str
    section: tuple[str, ...]
    source: str
    start: int
    end: int
    quote: str
    quote_start: int
    quote_end: int
    support: float
    supported: bool
    statement: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def page(self) -> int | None:
        """1-based page of the quote in a scanned document (rag.ingest.ocr), None for text documents;
        `metadata["boxes"]` then holds `[page, x0, y0, x1, y1]` of the quoted lines."""
        p = self.metadata.get("page")
        return int(p) if p is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "page": self.page,
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "title": self.title,
            "section": list(self.section),
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "quote": self.quote,
            "quote_start": self.quote_start,
            "quote_end": self.quote_end,
            "support": self.support,
            "supported": self.supported,
            "statement": self.statement,
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True)
class Claim:
    """One statement of an answer, after the claim check (rag.cite.claims).

    `start`/`end`: its span in `Answer.text` (markers excluded). `status`:
    - "verified": its answer-bearing content (numbers with units, years, names, quoted terms,
      list items, the words it adds beyond the question) is in the cited passage;
    - "unverified": something it asserts is not in any cited passage (`missing` says what), or
      it cites nothing checkable. Renderers show it visibly differently, never with a ✓.
    `numbers`: the passages 【n】 that back it (verified) or that it cited (unverified).
    """

    text: str
    start: int
    end: int
    status: str  # "verified" | "unverified"
    numbers: tuple[int, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "status": self.status,
            "numbers": list(self.numbers),
            "missing": list(self.missing),
        }


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    citations: tuple[Citation, ...]
    refused: bool
    hits: tuple[Hit, ...]
    timings: Mapping[str, float]  # seconds: retrieve, first_token, total (and others)
    model: str
    standalone_question: str = ""  # the condensed question used for retrieval (multi-turn)
    grounded: bool = True  # False when no valid citation backs the answer
    claims: tuple[Claim, ...] = ()  # the answer's statements with their check (empty for refusals)
    refusal_reason: str = ""  # what the documents lack, when refused and it can be named
    diagnostics: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)  # what the refusal decision used

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "standalone_question": self.standalone_question or self.question,
            "answer": self.text,
            "refused": self.refused,
            "grounded": self.grounded,
            "citations": [c.to_dict() for c in self.citations],
            "claims": [c.to_dict() for c in self.claims],
            "refusal_reason": self.refusal_reason,
            "diagnostics": dict(self.diagnostics),
            "hits": [h.to_dict() for h in self.hits],
            "timings": dict(self.timings),
            "model": self.model,
        }


# ---- events yielded by Assistant.ask(); the CLI, the web chat and the eval harness consume them


@dataclass(frozen=True)
class Status:
    stage: str  # "condense" | "retrieve" | "generate" | "cite" | ...
    message: str


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Evidence:
    hits: tuple[Hit, ...]  # the numbered passages handed to the model: hits[i] is 【i+1】


@dataclass(frozen=True)
class Final:
    answer: Answer


Event = Status | Token | Evidence | Final
