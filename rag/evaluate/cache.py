"""The per-evalset knowledge base: each corpus document written to a file and indexed once,
under `{RAG_HOME}/eval-cache/{set}-{key}/`, and reused while the key stays the same.

The key hashes the corpus, the chunk and embedding settings and the ingest/clean/chunk/index
code (`_code_hash`), so a changed chunker re-indexes. `done.json` marks a complete index: an
interrupted build is redone, never half-reused.

Deliberate compromise: the code hash covers five named source files, not everything the index
depends on (the embedding code and model files are keyed by the model's name only).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from rag.config import Config
from rag.errors import RagError
from rag.evaluate.evalsets import EvalSet
from rag.evaluate.base import CODE_ROOT, EvalError

log = logging.getLogger(__name__)


def _code_hash() -> str:
    """Ingest/clean/chunk code is part of the cache key: a changed chunker must re-index."""
    h = hashlib.sha1()
    for rel in ("rag/ingest/load.py", "rag/ingest/clean.py", "rag/chunk/sections.py", "rag/index/build.py", "rag/index/bm25.py"):
        p = CODE_ROOT / rel
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


def _doc_file_text(d: Mapping[str, Any]) -> tuple[str, int]:
    """Text written for a corpus document, and the offset of the corpus text inside it. The title
    goes first (BEIR convention: retrieval sees title + text) unless the text already contains it."""
    text = d.get("text", "") or ""
    title = (d.get("title") or "").strip()
    if title and title not in text:
        head = title + "\n\n"
        return head + text, len(head)
    return text, 0


def _safe_id(doc_id: str) -> str:
    if not doc_id or doc_id.startswith(("/", ".")) or ".." in doc_id.split("/") or "\0" in doc_id or "\\" in doc_id:
        raise EvalError(f"corpus id {doc_id!r} cannot be used as a file name")
    return doc_id


@dataclass
class Corpus:
    kb: Any
    docs_dir: Path
    offsets: dict[str, int]  # doc id -> where the corpus text starts in the indexed file
    key: str
    report: dict[str, Any] = field(default_factory=dict)


def corpus_key(es: EvalSet, cfg: Config) -> str:
    h = hashlib.sha1()
    for did in sorted(es.corpus):
        d = es.corpus[did]
        h.update(json.dumps([did, d.get("title", ""), d.get("text", "")], ensure_ascii=False).encode())
    h.update(json.dumps([dataclasses.asdict(cfg.chunk), cfg.embed.model, cfg.embed.max_seq_length], sort_keys=True).encode())
    h.update(_code_hash().encode())
    return h.hexdigest()[:16]


def build_corpus(es: EvalSet, cfg: Config, encoder: Any = None, progress: bool = True) -> Corpus:
    """Write each corpus document to `{home}/eval-cache/{set}-{key}/docs/{_id}.txt` (so the index's
    doc ids are the corpus ids) and index the folder there, or reuse that index if it is complete."""
    from rag.index.kb import KnowledgeBase

    key = corpus_key(es, cfg)
    base = Path(cfg.paths.home) / "eval-cache" / f"{es.name}-{key}"
    docs, kbdir, done = base / "docs", base / "kb", base / "done.json"
    offsets: dict[str, int] = {}
    for did, d in es.corpus.items():
        text, off = _doc_file_text(d)
        offsets[did] = off
        if not done.exists():
            f = docs / f"{_safe_id(did)}.txt"
            f.parent.mkdir(parents=True, exist_ok=True)
            if not text.strip():
                log.warning("corpus document %s is empty; skipped", did)
                continue
            with open(f, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
    if done.exists():
        kb = KnowledgeBase.open(kbdir, cfg, encoder=encoder)
        rep = json.loads(done.read_text(encoding="utf-8"))
    else:
        kb = KnowledgeBase.open(kbdir, cfg, encoder=encoder, create=True)
        r = kb.add_paths([docs], progress=progress)
        rep = r.to_dict() if hasattr(r, "to_dict") else {}
        rep = {k: v for k, v in rep.items() if k != "failures"} | {
            "failures": [str(f) for f in getattr(r, "failures", [])],
        }
        try:
            kb = KnowledgeBase.open(kbdir, cfg, encoder=encoder)
        except RagError:
            kb = None
        if kb is None or not kb.chunks:
            first = rep["failures"][0] if rep["failures"] else "no chunks were produced"
            raise EvalError(f"{es.name}: no corpus document could be indexed ({len(rep['failures'])} failures; first: {first})")
        done.write_text(json.dumps(rep, ensure_ascii=False, indent=2), encoding="utf-8")
    return Corpus(kb, docs, offsets, key, rep)


def document_texts(corpus: Corpus, es: EvalSet) -> dict[str, str]:
    """The original text each chunk's offsets index, as the ingester decoded it (it folds \\r\\n)."""
    out: dict[str, str] = {}
    from rag.ingest.load import load_file

    ids = {c.doc_id for c in corpus.kb.chunks}
    for did in ids:
        f = corpus.docs_dir / f"{did}.txt"
        text = None
        if f.exists():
            try:
                text = load_file(f, root=corpus.docs_dir).text
            except RagError as e:
                log.warning("cannot re-read %s: %s", f, e)
        if text is None and did in es.corpus:
            text = _doc_file_text(es.corpus[did])[0]
        if text is not None:
            out[did] = text
    return out
