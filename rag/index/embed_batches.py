"""Embedding the new chunks of a `rag index` run in batches, each batch cached as soon as it is done.

`rag index` on a 50 MB text (≈100k chunks at 10–17 passages/s, well over an hour) used to send
every new chunk to the encoder in one call and write the vectors to the cache only at the end:
an interrupt lost everything. Here the chunks whose vector is not cached are encoded
`CACHE_BATCH` at a time, and each batch's vectors are written to the vector cache
(embeddings.cache.VectorCache, one SQLite transaction per batch) before the next batch starts.
Interrupting the run (Ctrl-C, kill, a crash) loses at most the batch in progress; the next
`rag index` finds the finished batches in the cache and encodes only the rest. The index itself
is still published atomically at the end (rag.index.build), so the previous version stays current
until then.

The progress bar (tqdm, the project's bar; `tqdm.auto`, so the web chat's `gr.Progress
(track_tqdm=True)` shows it too) counts passages to encode, with passages/s and the time left;
vectors found in the cache are counted in its description, not as progress.

Cache keys are the chunk's embed text under the encoder's name — the scheme rag.index.build has used
since the cache existed, so vectors cached by earlier runs still hit.

Deliberate compromises: without a cache (`embed.cache = false` or an unusable cache file) the
batches still run but nothing survives an interrupt; a failing cache write is logged once and
indexing goes on (a broken cache must never stop indexing). Identical texts within a run are
encoded once.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.errors import RagError

log = logging.getLogger(__name__)

# Passages per encoder call and cache transaction: ≈15–25 s of work at 10–17 passages/s, so an
# interrupt loses little, while each call is still large enough for the encoder's own length-sorted
# batching (embed.batch_size = 32) to pad little.
CACHE_BATCH = 256


def _cache_get(cache, model: str, texts: Sequence[str]) -> list[np.ndarray | None]:
    if cache is None or not texts:
        return [None] * len(texts)
    try:
        return [None if v is None else np.asarray(v, np.float32) for v in cache.get_many(model, list(texts))]
    except Exception as e:  # a broken cache is a miss, never a failed index
        log.warning("vector cache read failed: %s", e)
        return [None] * len(texts)


def _bar(total: int, cached: int, name: str, show: bool):
    if not show or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"embedding ({name}; {cached} cached)", unit="passage", dynamic_ncols=True)


def embed_missing(encoder, texts: Sequence[str], cache, *, progress: bool = False,
                  batch_size: int | None = None) -> tuple[np.ndarray, int]:
    """(vectors of `texts` — shape (len(texts), encoder.dim), float32 — and how many texts went
    through the encoder). Vectors come from `cache` (a VectorCache or None) where present; the
    rest are encoded in batches of `batch_size` (default CACHE_BATCH), each stored in the cache
    before the next batch is encoded."""
    texts = list(texts)
    dim = int(encoder.dim)
    out = np.zeros((len(texts), dim), np.float32)
    rows_of: dict[str, list[int]] = {}  # text → its rows, in first-seen order
    for i, t in enumerate(texts):
        rows_of.setdefault(t, []).append(i)
    uniq = list(rows_of)
    todo: list[str] = []
    for t, v in zip(uniq, _cache_get(cache, encoder.name, uniq)):
        if v is not None and v.shape == (dim,):
            out[rows_of[t]] = v
        else:
            todo.append(t)
    size = max(1, int(batch_size or CACHE_BATCH))
    bar = _bar(len(todo), len(uniq) - len(todo), encoder.name, progress)
    writable = cache is not None
    try:
        for a in range(0, len(todo), size):
            part = todo[a : a + size]
            vecs = np.asarray(encoder.encode_passages(part, show_progress=False), np.float32)
            if vecs.shape != (len(part), dim):
                raise RagError(f"encoder {encoder.name} returned shape {vecs.shape}, expected {(len(part), dim)}")
            for t, v in zip(part, vecs):
                out[rows_of[t]] = v
            if writable:
                writable = _cache_put(cache, encoder.name, part, vecs)
            if bar is not None:
                bar.update(len(part))
    finally:
        if bar is not None:
            bar.close()
    return out, len(todo)


def _cache_put(cache, model: str, texts: Sequence[str], vecs: np.ndarray) -> bool:
    """Store one batch; False (and one warning) if the cache cannot be written."""
    try:
        cache.put_many(model, list(texts), vecs)
        return True
    except Exception as e:  # e.g. a full disk: keep indexing, stop trying to cache
        log.warning("vector cache write failed (%s); this run's remaining vectors are not cached", e)
        return False


def open_vector_cache(cfg):
    """The embeddings package's vector cache (embeddings.cache) if enabled and usable, else None
    (a damaged one is set aside once and a new one started: `set_cache_aside`)."""
    if not getattr(cfg.embed, "cache", False):
        return None
    from embeddings.cache import VectorCache

    folder = Path(cfg.paths.home) / "cache" / "vectors"
    for attempt in (1, 2):
        try:
            return VectorCache(folder)
        except Exception as e:  # a broken cache must never stop indexing
            if attempt == 1 and set_cache_aside(folder, e):
                continue  # a fresh, empty cache: this build re-embeds, the next ones hit it again
            log.warning("vector cache unavailable: %s", e)
            return None
    return None


def set_cache_aside(folder: Path, error: Exception) -> bool:
    """A damaged SQLite vector cache is renamed aside (never deleted: it is the user's disk, but it
    is only a cache) so a new one can start; otherwise every later build would re-embed every
    passage. Only for SQLite's own corruption errors, not for e.g. a permission problem."""
    import sqlite3

    cause = error.__cause__ if error.__cause__ is not None else error
    if not isinstance(cause, sqlite3.DatabaseError):
        return False
    # an OperationalError is set aside only when it reports damage: a cut header under a WAL can
    # surface as SQLITE_IOERR ("disk I/O error"); "locked", "readonly", "unable to open" are not damage
    if isinstance(cause, sqlite3.OperationalError) and not any(
        w in str(cause) for w in ("disk I/O error", "malformed", "not a database")
    ):
        return False
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    moved = False
    for p in sorted(folder.glob("vectors.sqlite*")):
        if ".damaged-" not in p.name:
            try:
                os.replace(p, p.with_name(f"{p.name}.damaged-{stamp}"))
                moved = True
            except OSError:
                return False
    if moved:
        log.warning("vector cache %s is damaged (%s); set aside as *.damaged-%s, starting a new one",
                    folder, cause, stamp)
    return moved
