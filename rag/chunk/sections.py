"""Section-aware chunking: clean text → headings → section paths → sentence-packed chunks.

Headings come from the document's own structure, recognised line by line on the clean text by
`rag.chunk.headings` (numbering styles, bracketed and Markdown headings, appendices, short title
lines; see its docstring). What is decided here: a short title line is a heading only when body
text follows it (up to 4 such lines in a row form one heading, e.g. a title broken over lines plus
the speaker's organisation); a `——副标题` line right after a heading joins it; a run of items
numbered alike under one parent that are mostly numbered paragraphs is a list, not headings; a
line that starts with an earlier unnumbered heading of the same article, glued to its first
sentence by OCR (`党建示范点解说词这是一个…`), is split back into heading and text.

Nesting follows the order in which heading styles first appear, like a stack: a style already on
the stack closes everything below it; a new style nests under the current heading (Markdown
levels compare by their number of `#`; `附件：` closes everything but the article). A heading
that ends up with no text under it (a one-line list item) is demoted back to body text, leaves
first, so no heading text is ever lost.

Compromise: all of this is line-level heuristics on plain text. Where OCR merged a title into
the middle of a paragraph, or a title line reads like a sentence, the structure is missed and
the text simply stays in the enclosing section.

Packing: a section's body is split into sentences (`rag.text.sentences`; `split_sentences` and
`sentence_spans` are re-exported here) and packed greedily into chunks of at most `max_tokens`
tiktoken cl100k tokens (headings excluded; they travel in `Chunk.section` and
`Chunk.embed_text`), each next chunk repeating the last `overlap_sentences`
whole sentences. A sentence longer than `max_tokens` is cut at clause marks (，、：), then by
tokens. A final fragment under `min_tokens` merges with its neighbour in the same section (or
takes sentences from it). Chunk ids are `doc_id#n` in document order: the same document and
config give the same ids on every rebuild.

Tables (`rag.ingest.tables`; the readers record them in `metadata["tables"]`): every row line is one
unit and never a heading; a chunk that starts inside a table begins with the table's header line
(context: `chunk.metadata["context_prefix"]` characters, mapped to the header's real place), and
chunks do not overlap inside a table. Packing itself lives in `rag.chunk.pack`.

Offsets: `Chunk.start/end` is the span in the original text (`Document.text`); the chunk's
character-level map is in `chunk.metadata["offset_runs"]` (see `chunk_offsets`), so a quoted
sentence inside a chunk can be located exactly in the user's file (`chunk_orig_span`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Sequence

from rag.config import ChunkConfig
from rag.chunk.headings import SENT_END_ANY, heading_marker, is_title_candidate, marker_style
from rag.chunk.pack import count_tokens, offset_runs, pack_units, section_units  # noqa: F401  (count_tokens: re-exported)
from rag.ingest.tables import chunk_tables, clean_tables, header_prefix, table_lines
from rag.text.sentences import sentence_spans, split_sentences  # noqa: F401  (re-exported: the shared splitter)
from rag.types import Chunk, Document

#: Changes whenever the rules here, in rag.chunk.headings/pack or in rag.ingest.clean change what
#: chunks a file gives; an index can store it beside the ChunkConfig to know when unchanged files
#: must be re-chunked.
CHUNKER_VERSION = "2026-12-02.1"

# ---------------------------------------------------------------------------------------------
# structure


@dataclass
class _Item:
    kind: str  # "heading" | "body"
    start: int  # clean offsets of the body text (body) or of the heading text (heading)
    end: int
    style: str = ""
    text: str = ""  # heading text
    line: int = 0


@dataclass
class Section:
    """A run of body text under one heading path: clean[start:end]."""

    path: tuple[str, ...]
    start: int
    end: int
    heading_ids: tuple[int, ...] = field(default=(), compare=False)


def _lines(clean: str) -> list[tuple[int, int]]:
    out, pos = [], 0
    for ln in clean.split("\n"):
        out.append((pos, pos + len(ln)))
        pos += len(ln) + 1
    return out


def _items(clean: str, demoted: set[int]) -> list[_Item]:
    lines = _lines(clean)
    texts = [clean[a:b] for a, b in lines]
    items: list[_Item] = []
    seen_titles: list[str] = []  # unnumbered one-line headings of the current article
    in_fence = False
    i = 0
    n = len(lines)
    while i < n:
        a, b = lines[i]
        s = texts[i]
        if not s.strip():
            i += 1
            continue
        if s.startswith(("```", "~~~")) or in_fence:  # Markdown code: "# comment" is no heading
            if s.startswith(("```", "~~~")):
                in_fence = not in_fence
            items.append(_Item("body", a, b, line=i))
            i += 1
            continue
        hm = heading_marker(s) if i not in demoted else None
        if hm is not None:
            if hm.style == "article":
                seen_titles = []
            items.append(_Item("heading", a, a + hm.head_end, hm.style, hm.text(s), i))
            if not hm.whole_line and hm.body_start < len(s):
                items.append(_Item("body", a + hm.body_start, b, line=i))
            i += 1
            continue
        if i not in demoted and is_title_candidate(s):
            j = i
            while j < n and j - i < 5 and texts[j].strip() and is_title_candidate(texts[j]) and j not in demoted:
                j += 1
            nxt = texts[j] if j < n else ""
            if j - i <= 4 and nxt.strip() and not is_title_candidate(nxt):
                text = " ".join(texts[k].strip() for k in range(i, j))
                items.append(_Item("heading", a, lines[j - 1][1], "title", text, i))
                seen_titles.extend(texts[k].strip() for k in range(i, j) if len(texts[k].strip()) >= 6)
                i = j
                continue
            for k in range(i, j):  # a list of short lines, or the file's last lines: body
                items.append(_Item("body", lines[k][0], lines[k][1], line=k))
            i = j
            continue
        if i not in demoted:
            # OCR lost the line break after a heading that repeats an earlier one of this
            # article (several pieces under one title): "党建示范点解说词这是一个…。"
            rep = next((t for t in seen_titles if s.startswith(t) and len(s) - len(t) >= 10), None)
            if rep is not None:
                items.append(_Item("heading", a, a + len(rep), "title", rep, i))
                items.append(_Item("body", a + len(rep), b, line=i))
                i += 1
                continue
        items.append(_Item("body", a, b, line=i))
        i += 1
    # "——副标题" right after a heading belongs to it
    out: list[_Item] = []
    for it in items:
        if (
            it.kind == "body"
            and out
            and out[-1].kind == "heading"
            and out[-1].end < it.start
            and clean.startswith("——", it.start)
            and it.end - it.start <= 60
            and not SENT_END_ANY.search(clean, it.start, it.end)
        ):
            h = out[-1]
            h.text = f"{h.text} {clean[it.start:it.end].strip()}"
            h.end = it.end
            continue
        out.append(it)
    return out


def _list_demotions(texts: list[str]) -> set[int]:
    """Lines numbered alike under the same parent form one list; a list whose items are mostly
    numbered paragraphs (first sentence too long to be a heading) is a list of paragraphs, so its
    few heading-like items are demoted too ('1、长句…。' '2、短句。' '3、长句…。' are all body)."""
    order: list[str] = []
    last_line: dict[str, int] = {}
    runs: dict[tuple, list[tuple[int, bool]]] = {}
    article = 0
    for i, s in enumerate(texts):
        st = marker_style(s.strip())
        if st is None or st.startswith("md") or st == "bracket":
            continue
        if st == "article":
            article += 1
            order, last_line = [], {}
            continue
        if st not in order:
            order.append(st)
        rank = order.index(st)
        parent = max((last_line[o] for o in order[:rank] if o in last_line), default=-1)
        runs.setdefault((article, st, parent), []).append((i, heading_marker(s.strip()) is not None))
        last_line[st] = i
    demoted: set[int] = set()
    for items in runs.values():
        heads = [i for i, h in items if h]
        if len(items) - len(heads) > len(heads):
            demoted.update(heads)
    return demoted


def _md_level(style: str) -> int:
    return int(style[2:]) if style.startswith("md") and style[2:].isdigit() else 0


def parse_sections(clean: str, body_lines: Collection[int] = frozenset()) -> list[Section]:
    """Body sections of a clean text, each with its heading path (outermost first).
    `body_lines`: line numbers that are never headings (table rows)."""
    texts = clean.split("\n")
    demoted: set[int] = _list_demotions([("" if i in body_lines else s) for i, s in enumerate(texts)] if body_lines else texts)
    demoted |= set(body_lines)
    while True:
        items = _items(clean, demoted)
        sections, used, depth = _assign(items)
        # demote empty headings from the leaves up: a parent whose children all turn out to be
        # body text has text after all
        empty = set()
        for idx, it in enumerate(items):
            if it.kind != "heading" or idx in used:
                continue
            nxt = items[idx + 1] if idx + 1 < len(items) else None
            if nxt is None or nxt.kind != "heading" or depth[idx + 1] <= depth[idx]:
                empty.add(it.line)
        if not empty:
            return sections
        demoted |= empty


def _assign(items: list[_Item]) -> tuple[list[Section], set[int], dict[int, int]]:
    stack: list[tuple[str, str, int]] = []  # (style, text, item index)
    sections: list[Section] = []
    used: set[int] = set()
    depth: dict[int, int] = {}
    for idx, it in enumerate(items):
        if it.kind == "heading":
            st = it.style
            if st == "article":
                stack = []
            elif st == "appendix":
                stack = [e for e in stack if e[0] == "article"]
            elif _md_level(st):
                lvl = _md_level(st)
                cut = next((k for k, e in enumerate(stack) if _md_level(e[0]) >= lvl), None)
                if cut is not None:
                    stack = stack[:cut]
            else:
                cut = next((k for k, e in enumerate(stack) if e[0] == st), None)
                if cut is not None:
                    stack = stack[:cut]
            stack.append((st, it.text, idx))
            depth[idx] = len(stack)
            continue
        ids = tuple(e[2] for e in stack)
        path = tuple(e[1] for e in stack)
        if sections and sections[-1].heading_ids == ids and sections[-1].end <= it.start:
            sections[-1].end = it.end
        else:
            sections.append(Section(path, it.start, it.end, ids))
        used.update(ids)
    return sections, used, depth


# ---------------------------------------------------------------------------------------------
# chunks


def chunk_offsets(chunk: Chunk) -> list[int]:
    """Original offset of every character of `chunk.text` (from metadata['offset_runs'])."""
    runs = chunk.metadata.get("offset_runs")
    if not runs:
        return list(range(chunk.start, chunk.start + len(chunk.text)))
    out: list[int] = []
    for k, (i, o) in enumerate(runs):
        nxt = runs[k + 1][0] if k + 1 < len(runs) else len(chunk.text)
        out.extend(range(o, o + (nxt - i)))
    return out


def chunk_orig_span(chunk: Chunk, i: int, j: int) -> tuple[int, int]:
    """Original [start, end) of `chunk.text[i:j]`, e.g. a quoted sentence inside a chunk."""
    offs = chunk_offsets(chunk)
    if j <= i:
        p = offs[i] if i < len(offs) else chunk.end
        return p, p
    return offs[i], offs[j - 1] + 1


def chunk_document(doc: Document, cfg: ChunkConfig | None = None) -> list[Chunk]:
    """Chunks of one document (see module doc). Ids are `f"{doc.doc_id}#{n}"`, n from 0."""
    cfg = cfg or ChunkConfig()
    if cfg.max_tokens < 16:
        from rag.errors import ConfigError

        raise ConfigError(f"chunk.max_tokens={cfg.max_tokens} is too small: use at least 16 (default 320)")
    clean = doc.clean
    chunks: list[Chunk] = []
    tables = clean_tables(doc)
    for sec in parse_sections(clean, table_lines(clean, tables)):
        units = section_units(clean, sec.start, sec.end, cfg, tables)
        prefix = header_prefix(clean, tables, units, cfg.max_tokens, lambda t: count_tokens(t, cfg.encoding))
        for i, j, ntok in pack_units(units, cfg, clean, prefix):
            a, b = units[i].start, units[j - 1].end
            start, end = doc.orig_span(a, b)
            head = prefix(i)  # a table's header line, repeated as context (rag.ingest.tables)
            text = head + clean[a:b]
            n = len(chunks)
            meta = dict(doc.metadata)
            meta.pop("tables", None)
            if "ocr_lines" in meta:  # a scan: the chunk keeps its own rows of the page/box table
                from rag.ingest.ocr.locate import chunk_metadata

                meta = chunk_metadata(meta, int(start), int(end))
            meta["tokens"] = ntok
            meta["offset_runs"] = offset_runs(doc.offsets, a, b)
            if head:
                t = tables[units[i].table]
                meta["offset_runs"] = offset_runs(doc.offsets, t.start, t.start + len(head)) + [
                    [k + len(head), o] for k, o in meta["offset_runs"]]
                meta["context_prefix"] = len(head)
            if tables and (in_chunk := chunk_tables(tables, a, b, head)):
                meta["tables"] = in_chunk
            chunks.append(
                Chunk(
                    chunk_id=f"{doc.doc_id}#{n}",
                    doc_id=doc.doc_id,
                    n=n,
                    title=doc.title,
                    section=sec.path,
                    text=text,
                    start=int(start),
                    end=int(end),
                    source=doc.source,
                    metadata=meta,
                )
            )
    return chunks


def chunk_documents(docs: Sequence[Document], cfg: ChunkConfig | None = None) -> list[Chunk]:
    out: list[Chunk] = []
    for d in docs:
        out.extend(chunk_document(d, cfg))
    return out
