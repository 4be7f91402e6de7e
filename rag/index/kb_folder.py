"""A knowledge base's folder: where a named KB lives (`resolve_kb_dir`), which KBs there are
(`list_kbs`), and the write lock every indexer of a folder takes (`write_lock`: fcntl, so two
indexers — two processes, or two threads — never collide).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterator

from rag.config import Config, load_config
from rag.errors import ConfigError, RagError
from rag.index.verify import candidates
from rag.limits import LIMITS, valid_kb_name

log = logging.getLogger("rag.index.kb")  # the name these messages were logged under before the split

LOCK = ".lock"


def list_kbs(cfg: Config | None = None) -> list[str]:
    """Names of the knowledge bases under `cfg.paths.kb_root` that have a usable index."""
    cfg = cfg or load_config()
    root = cfg.paths.kb_root
    if not root.is_dir():
        return []
    # any complete version counts: a KB whose current version is damaged still opens (fallback)
    # or at least says which file is damaged, rather than vanishing from the list
    # a Milvus-backed KB leaves MILVUS (its alias and URI) in its folder (rag.index.milvus.kb)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (candidates(p) or (p / "MILVUS").is_file()))


def resolve_kb_dir(name_or_dir: str | os.PathLike, cfg: Config) -> tuple[str, Path]:
    """(name, folder): a bare name lives under kb_root; anything path-like is used as is."""
    s = str(name_or_dir)
    if os.sep in s or s.startswith(".") or Path(s).is_absolute():
        p = Path(s).expanduser().resolve()
        return p.name, p
    if not valid_kb_name(s):
        shown = s if len(s) <= 40 else s[:40] + "…"
        raise ConfigError(f"invalid knowledge base name {shown!r}: use at most {LIMITS.kb_name_chars} letters, digits, '_', '-', '.'")
    return s, cfg.paths.kb_dir(s)


@contextlib.contextmanager
def write_lock(folder: Path, name: str, tlock: threading.Lock, timeout: float = 600.0) -> Iterator[None]:
    """Hold the fcntl lock of the KB folder `folder` (KB `name`, for messages) and the thread
    lock `tlock`; waits up to `timeout` seconds (one warning), then RagError."""
    folder.mkdir(parents=True, exist_ok=True)
    with tlock:
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout
            warned = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not warned:
                        log.warning("knowledge base '%s' is being written by another process; waiting", name)
                        warned = True
                    if time.monotonic() > deadline:
                        raise RagError(f"knowledge base '{name}' is locked by another indexer "
                                       f"({folder / LOCK}); try again when it has finished") from None
                    time.sleep(0.2)
            yield
        finally:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
