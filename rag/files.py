"""File checksums, in one place: the index's integrity table, the model installers' checks.

>>> import tempfile, os
>>> with tempfile.NamedTemporaryFile(delete=False) as f:
...     _ = f.write(b"abc")
>>> sha256_file(f.name)[:16]  # sha256("abc") = ba7816bf8f01cfea…
'ba7816bf8f01cfea'
>>> os.unlink(f.name)
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path, bufsize: int = 1 << 20) -> str:
    """The sha256 of a file, read in `bufsize` blocks (a GGUF of 1 GB never sits in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(bufsize):
            h.update(block)
    return h.hexdigest()
