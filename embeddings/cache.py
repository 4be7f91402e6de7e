"""A persistent vector cache, so re-indexing unchanged text costs nothing.

Keyed by (model key, sha1 of the text), holding float32 bytes, in SQLite: one file, safe for
several processes (WAL journal: readers never block and are never blocked by the one writer;
writers wait on a busy timeout), and one connection per thread so a web server's threads can
share a `VectorCache` object.

What goes into the key matters: the model key must name everything that turns a text into a
vector. Its one user, rag.index.embed_batches, keys on the encoder's `name` and the chunk's
embed text.

Deliberate compromise: entries are never evicted (a cache of a 100k-chunk corpus at dim 384 is
~160 MB); `clear()` drops a model's entries, and the file can simply be deleted.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.errors import RagError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    key   BLOB NOT NULL,      -- sha1(text, utf-8), 20 bytes
    dim   INTEGER NOT NULL,
    vec   BLOB NOT NULL,      -- float32 little-endian, dim * 4 bytes
    PRIMARY KEY (model, key)
) WITHOUT ROWID;
"""
_BATCH = 500  # SQLite's default limit of host parameters is 999 (older builds)


def text_key(text: str) -> bytes:
    """sha1 of the UTF-8 text (20 bytes)."""
    return hashlib.sha1(text.encode("utf-8")).digest()


class VectorCache:
    """`VectorCache(path)`: `path` is a file (e.g. `vectors.sqlite`) or a folder, in which case the
    file is `{path}/vectors.sqlite`. Created on first use."""

    FILENAME = "vectors.sqlite"

    def __init__(self, path: str | Path, timeout: float = 30.0):
        p = Path(path).expanduser()
        if p.is_dir() or (not p.exists() and not p.suffix):
            p = p / self.FILENAME
        p.parent.mkdir(parents=True, exist_ok=True)
        self.path = p
        self.timeout = timeout
        self._local = threading.local()
        self._conn()  # create the schema now, so a bad path fails here with a clear error

    def _conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            try:
                c = sqlite3.connect(str(self.path), timeout=self.timeout)
                c.execute("PRAGMA journal_mode=WAL")
                c.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable enough for a cache, fast
                c.executescript(_SCHEMA)
            except sqlite3.DatabaseError as e:
                raise RagError(f"vector cache {self.path} is unusable ({e}); delete the file to start a new one") from e
            self._local.conn = c
        return c

    def get_many(self, model: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        """The cached vector of each text (float32, read-only copy), or None where absent."""
        keys = [text_key(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        c = self._conn()
        uniq = list(dict.fromkeys(keys))
        for a in range(0, len(uniq), _BATCH):
            part = uniq[a : a + _BATCH]
            q = f"SELECT key, dim, vec FROM vectors WHERE model = ? AND key IN ({','.join('?' * len(part))})"
            for key, dim, blob in c.execute(q, [model, *part]):
                if len(blob) == 4 * dim:  # a torn or foreign row is a miss, never a wrong vector
                    found[bytes(key)] = np.frombuffer(blob, "<f4", dim)
        return [found.get(k) for k in keys]

    def put_many(self, model: str, texts: Sequence[str], vectors) -> None:
        """Store one vector per text (one transaction)."""
        vecs = np.asarray(vectors, dtype="<f4")
        if vecs.ndim != 2 or len(vecs) != len(texts):
            raise ValueError(f"put_many: {len(texts)} texts but vectors of shape {vecs.shape}")
        rows = [(model, text_key(t), int(vecs.shape[1]), vecs[i].tobytes()) for i, t in enumerate(texts)]
        c = self._conn()
        with c:  # one transaction; rolls back on error
            c.executemany("INSERT OR REPLACE INTO vectors (model, key, dim, vec) VALUES (?, ?, ?, ?)", rows)

    def count(self, model: str | None = None) -> int:
        c = self._conn()
        if model is None:
            return c.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        return c.execute("SELECT COUNT(*) FROM vectors WHERE model = ?", (model,)).fetchone()[0]

    def __len__(self) -> int:
        return self.count()

    def models(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT DISTINCT model FROM vectors ORDER BY model")]

    def clear(self, model: str | None = None) -> None:
        c = self._conn()
        with c:
            if model is None:
                c.execute("DELETE FROM vectors")
            else:
                c.execute("DELETE FROM vectors WHERE model = ?", (model,))

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None
