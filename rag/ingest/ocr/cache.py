"""OCR results cached by page image: re-indexing a scan (or re-reading it for an exact quote)
never OCRs a page twice.

Key: sha256 of the engine id, the image size and its raw pixels (the page image, not the file: a
re-saved PDF with the same pages still hits). Value: `PageOCR.to_json()`, one small JSON file per
page under `{RAG_HOME}/cache/ocr/ab/abcdef….json`, written atomically. A broken cache is a miss,
never a failed index (errors are logged once).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from rag.ingest.ocr.engine import ENGINE_ID
from rag.ingest.ocr.lines import PageOCR

log = logging.getLogger(__name__)
_warned = False


def cache_dir() -> Path:
    from rag.config import PathsConfig

    return Path(PathsConfig().home) / "cache" / "ocr"


def image_key(img) -> str:
    from rag.ingest.ocr.tesseract import available

    engine = ENGINE_ID + ("+tesseract-chi_tra" if available("chi_tra") else "")
    h = hashlib.sha256(f"{engine}|{img.mode}|{img.width}x{img.height}|".encode())
    h.update(img.tobytes())
    return h.hexdigest()


def _path(key: str) -> Path:
    return cache_dir() / key[:2] / f"{key}.json"


def get(key: str) -> PageOCR | None:
    p = _path(key)
    try:
        return PageOCR.from_json(json.loads(p.read_text("utf-8")))
    except FileNotFoundError:
        return None
    except Exception as e:  # a damaged entry is a miss
        _warn(f"unreadable OCR cache entry {p}: {e}")
        return None


def put(key: str, page: PageOCR) -> None:
    p = _path(key)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(page.to_json(), ensure_ascii=False), "utf-8")
        os.replace(tmp, p)
    except OSError as e:
        _warn(f"cannot write the OCR cache ({e}); pages will be OCR'd again next time")


def _warn(msg: str) -> None:
    global _warned
    if not _warned:
        log.warning("%s", msg)
        _warned = True
