"""The encoder interface every stage uses, and a deterministic fake for fast tests.

An encoder owns everything model-specific (e5's `query: ` / `passage: ` prefixes, pooling,
L2 normalisation, script normalisation of its input), so no caller can forget it: callers pass
raw text and always get L2-normalised float32 rows.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from rag.text.norm import normalize


@runtime_checkable
class Encoder(Protocol):
    name: str  # identifies the model in manifests and the vector cache
    dim: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:  # (n, dim) float32, L2-normalised
        ...

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        ...


class FakeEncoder:
    """Hashed character uni+bigrams of the normalised text: deterministic, instant, and lexical
    enough that a question finds a passage sharing its words. For unit tests only."""

    def __init__(self, dim: int = 256, name: str = "fake"):
        self.dim = dim
        self.name = f"{name}-{dim}"

    def _one(self, text: str) -> np.ndarray:
        t = normalize(text)
        v = np.zeros(self.dim, dtype=np.float32)
        grams = list(t) + [t[i : i + 2] for i in range(len(t) - 1)]
        for g in grams:
            if g.strip():
                h = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little")
                v[h % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._one(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self.encode_queries(texts)


@contextlib.contextmanager
def quiet_transformers():
    """transformers draws a "Loading weights" bar on every load: noise in a CLI's output."""
    try:
        from transformers.utils import logging as tlog
    except ImportError:
        yield
        return
    was = tlog.is_progress_bar_enabled()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            tlog.enable_progress_bar()
