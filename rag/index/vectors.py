"""The dense side of one index version: exact float32 vectors, plus an int8 copy that is scanned.

Files of a version folder (rag.index.build writes them, rag.index.version opens them):
    vectors.faiss         faiss.IndexFlatIP over the L2-normalised float32 vectors: the exact
                          vectors (reconstructed rows, exact scores, incremental updates)
    vectors.i8.faiss      faiss.IndexScalarQuantizer (QT_8bit_direct_signed): row i holds
                          round(v_ij / scale_j), an int8 per dimension
    vectors.i8.scale.npy  scale_j = max_i |v_ij| / 127 (float32, one per dimension)
The manifest declares the int8 copy under `faiss.coarse`; a version written before it existed has
no such entry and is searched exactly (same results, slower at 100k chunks).

Search (`DenseStore.search`): scan the int8 copy for the top `rescore_n(k)` candidates, then score
those exactly (float32 rows of vectors.faiss · query) and keep the top k, ties → lower row. The
per-dimension scale is folded into the query (Σ q_j·v_ij ≈ Σ (q_j·scale_j)·code_ij), so the int8
scan ranks like the float one up to rounding; the rescoring makes the top k exact whenever the
true top k are among the candidates. Measured (benchmarks/results/scale.md): at 100k chunks the
top-10 (dense alone and hybrid) was identical to the exact scan's for all 300 questions, and the
dense top-50 took ≈2.4 ms instead of ≈23 ms (FAISS's AVX2/AVX-512 int8 kernel; it also quantises the
query to integers, hence the query is scaled to ±127 before it is handed over).

Opening reads both FAISS files into memory (≈0.2 s for 100k × 384). Measured and rejected:
memory-mapping them (`IO_FLAG_MMAP_IFC`) opens in ~20 ms, but on this shared machine the page
cache does not keep the file, and the exact rescoring's random rows then cost a page fault each:
30–170 ms per query instead of 0.06 ms (benchmarks/results/scale.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

FLAT = "vectors.faiss"
COARSE = "vectors.i8.faiss"
SCALE = "vectors.i8.scale.npy"
COARSE_KIND = "IndexScalarQuantizer/QT_8bit_direct_signed"


def rescore_n(k: int) -> int:
    """How many int8-scan candidates are rescored exactly for a top-k (generous: rescoring a row
    costs ~1 µs; measured recall: benchmarks/results/scale.md).

    >>> rescore_n(10), rescore_n(50)
    (84, 164)
    """
    return 2 * k + 64


def write(folder: Path, vectors: np.ndarray, dim: int) -> dict[str, Any]:
    """Write the flat index and its int8 copy into `folder`; returns the manifest's `faiss` entry."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
    flat = faiss.IndexFlatIP(dim)
    if len(vectors):
        flat.add(vectors)
    faiss.write_index(flat, str(Path(folder) / FLAT))
    peak = np.abs(vectors).max(axis=0) if len(vectors) else np.zeros(dim, np.float32)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(vectors / scale), -127, 127).astype(np.float32)
    coarse = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit_direct_signed, faiss.METRIC_INNER_PRODUCT)
    coarse.train(codes[:1] if len(codes) else np.zeros((1, dim), np.float32))  # nothing to learn: direct codes
    if len(codes):
        coarse.add(codes)
    faiss.write_index(coarse, str(Path(folder) / COARSE))
    np.save(Path(folder) / SCALE, scale)
    return {"index": "IndexFlatIP", "metric": "inner_product",
            "coarse": {"index": COARSE_KIND, "file": COARSE, "scale": SCALE}}


class DenseStore:
    """The opened dense side (read-only, thread-safe: FAISS searches on a const index).

    `use_coarse` is False for a version without the int8 copy, and can be set False to search
    exactly (the benchmark's recall reference)."""

    def __init__(self, folder: Path, faiss_info: dict[str, Any] | None):
        import faiss

        folder = Path(folder)
        self.flat = faiss.read_index(str(folder / FLAT))
        self.coarse = None
        self.scale: np.ndarray | None = None
        info = (faiss_info or {}).get("coarse") if isinstance(faiss_info, dict) else None
        if isinstance(info, dict) and info.get("index") == COARSE_KIND:
            self.coarse = faiss.read_index(str(folder / COARSE))
            self.scale = np.load(folder / SCALE).astype(np.float32)
        self.use_coarse = self.coarse is not None

    @property
    def ntotal(self) -> int:
        return int(self.flat.ntotal)

    @property
    def d(self) -> int:
        return int(self.flat.d)

    def counts(self) -> list[tuple[str, int]]:
        """(file, rows) of each vector file, for the version's structure check."""
        out = [(FLAT, self.ntotal)]
        if self.coarse is not None:
            out.append((COARSE, int(self.coarse.ntotal)))
            if self.scale is None or self.scale.shape != (self.d,):
                out.append((SCALE, -1))
        return out

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros((0, self.d), np.float32)
        return self.flat.reconstruct_batch(np.asarray(rows, dtype=np.int64))

    def search(self, qvec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top-k rows by exact inner product (see the module docstring); ties → lower row."""
        n = self.ntotal
        if n == 0 or k <= 0:
            return []
        q = np.ascontiguousarray(np.asarray(qvec, dtype=np.float32).reshape(1, -1))
        if self.use_coarse and rescore_n(k) < n:
            z = q * self.scale
            peak = float(np.abs(z).max())
            _, idx = self.coarse.search(z * (127.0 / peak) if peak > 0 else z, rescore_n(k))
        else:  # a little slack so rows tied at the k-th place are seen
            _, idx = self.flat.search(q, min(n, k + 8))
        rows = idx[0][idx[0] >= 0]
        # the final scores always come from the float32 rows (the same numbers the searcher
        # reports), so the exact and the int8 path order their common rows identically
        scores = self.vectors(rows) @ q[0]
        order = np.lexsort((rows, -scores))[:k]
        return [(int(rows[i]), float(scores[i])) for i in order]
