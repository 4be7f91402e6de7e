"""What an index version records about how it was built, and the checks made against it: the
content hashes (a document's, a chunk text's, the corpus's), the chunker's settings and rule
version, the package versions, and the embedding-model check (`check_model`: ModelMismatch
when an index is searched or extended with another model than it was built with).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from typing import Any, Mapping, Sequence

from rag.errors import ModelMismatch
from rag.types import Document


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def doc_sha256(doc: Document) -> str:
    """Content hash of a document: the ingest-provided file hash when present, else of its text."""
    sha = (doc.metadata or {}).get("sha256")
    return str(sha) if sha else hashlib.sha256(doc.text.encode("utf-8")).hexdigest()


def package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("rag-zh", "faiss-cpu", "bm25s", "jieba", "opencc", "numpy", "sentence-transformers", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def chunker_settings(cfg) -> dict[str, Any]:
    """The chunker's settings and its rule version: a rule change re-chunks every document on the
    next `rag index` (vectors of unchanged chunk texts still come from the cache)."""
    from rag.chunk.sections import CHUNKER_VERSION

    return {**dataclasses.asdict(cfg.chunk), "version": CHUNKER_VERSION}


def corpus_hash(docs: Sequence[Mapping[str, Any]], chunker: Mapping[str, Any], model: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([chunker, model], sort_keys=True).encode())
    for d in sorted(docs, key=lambda d: d["doc_id"]):
        h.update(f"{d['doc_id']}\t{d['sha256']}\n".encode())
    return h.hexdigest()


def check_model(manifest: Mapping[str, Any], kb: str, config_model: str | None = None,
                encoder_name: str | None = None, encoder_dim: int | None = None) -> None:
    """Raise ModelMismatch if the index was built with another embedding model."""
    emb = manifest.get("embedding", {})
    built, built_cfg, dim = emb.get("model"), emb.get("config_model"), emb.get("dim")
    wrong = None
    if encoder_name is not None and encoder_name != built:
        wrong = encoder_name
    elif encoder_dim is not None and dim is not None and encoder_dim != dim:
        wrong = f"{encoder_name} ({encoder_dim} dims)"
    elif encoder_name is None and config_model is not None and config_model not in (built, built_cfg):
        wrong = config_model
    if wrong is not None:
        raise ModelMismatch(
            f"knowledge base '{kb}' was indexed with embedding model '{built_cfg or built}' ({dim} dims) "
            f"but '{wrong}' is configured; its vectors are not comparable. Either set embed.model = "
            f"'{built_cfg or built}' (RAG_EMBED_MODEL) or re-index with `rag index --kb {kb} --rebuild`."
        )
