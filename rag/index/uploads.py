"""Uploads: store a user's file in a knowledge base's uploads folder and index it, losing nothing.

The web chat (ui/app.py) only renders what `index_uploads` returns. The rule: the stored file is
replaced only after its new version has been indexed. Each upload is

1. checked: supported suffix, not empty, at most `max_mb` (`ui.max_upload_mb`); its name is
   sanitised (`safe_filename`: the base name only — no `..`, no folders, no control characters —
   at most 255 bytes, never hidden);
2. copied to a temporary name in the uploads folder (`.upload-<random><suffix>`: hidden, so a
   folder walk never picks it up, and on the same file system as the stored file, so the final
   rename is atomic), the copy itself capped at the size limit;
3. ingested from there *as if* it were the stored file (`rag.ingest.load.load_file(stored_as=…)`: the
   id, title and source are the stored file's) and given to `KnowledgeBase.add_documents`;
4. renamed over the stored file (`os.replace`) only if 3 succeeded.

A file that fails to read or index leaves the previous stored file *and* the index as they were
(the index publishes a new version atomically or not at all) and its temporary copy is removed.
Messages are in Chinese: they are shown in the Chinese web chat.

Deliberate compromises: if the process dies between publishing the index and the rename (a few
microseconds), the index holds the new version while the old file is still stored — the answer
stage then notices the sha256 mismatch and gives no exact quote until the file is uploaded again;
its temporary copy is removed by the next upload after an hour (`_STALE_SECONDS`). Uploads to one
knowledge base are expected to be serialised by the caller (the web chat's "index" queue);
temporary names are random anyway, so concurrent uploads never write the same file.
"""

from __future__ import annotations

import logging
import os
import re
import time
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from rag.errors import IngestError, RagError
from rag.index.verify import fsync_path

log = logging.getLogger(__name__)

ALLOWED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".docx", ".pdf",
                    ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")  # images: OCR (rag.ingest.ocr)
TEMP_PREFIX = ".upload-"
_STALE_SECONDS = 3600  # temporary copies older than this are left-overs of a crash
_MAX_NAME_BYTES = 255  # NAME_MAX of ext4/xfs/btrfs/tmpfs
_COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class UploadResult:
    """One line of the upload report: status "ok" | "skip" | "error", file name, message."""

    status: str
    name: str
    message: str

    def as_tuple(self) -> tuple[str, str, str]:
        return (self.status, self.name, self.message)


def safe_filename(name: str) -> str:
    """The name an upload is stored under: its base name (either slash), no control or reserved
    characters, no leading dots or spaces (never hidden, never `..`), ≤ 255 bytes with the suffix
    kept; "upload" if nothing is left.

    >>> safe_filename("../../etc/passwd"), safe_filename("..\\\\a\\\\报告.txt"), safe_filename("..")
    ('passwd', '报告.txt', 'upload')
    """
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C")  # control, format, NUL
    base = re.sub(r'[:*?"<>|]', "_", base).strip().lstrip(". ").rstrip(". ")
    if not base:
        return "upload"
    stem, suffix = os.path.splitext(base)
    if len(suffix.encode("utf-8")) > 32:  # not a real suffix: keep it in the stem
        stem, suffix = base, ""
    while len((stem + suffix).encode("utf-8")) > _MAX_NAME_BYTES:
        stem = stem[:-1]
    return (stem + suffix) or "upload"


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def validate_upload(path: Path, max_mb: int, orig_name: str | None = None) -> str | None:
    """None if the file may be indexed, else a message saying why not."""
    name = orig_name or path.name
    suffix = Path(name).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        kinds = ", ".join(s.lstrip(".") for s in ALLOWED_SUFFIXES if s not in (".markdown", ".htm"))
        return f"不支持的文件类型「{suffix or '无扩展名'}」，支持：{kinds}"
    size = _file_size(path)
    if size < 0:
        return "文件无法读取（上传可能未完成）"
    if size == 0:
        return "文件是空的"
    if size > max_mb * 1024 * 1024:
        return f"文件太大（{size / 1024 / 1024:.1f} MB），上限 {max_mb} MB"
    return None


def upload_path(f: Any) -> Path:
    """A path from what gr.File hands over: a str/PathLike, or an object with .path/.name."""
    if isinstance(f, (str, os.PathLike)):
        return Path(f)
    return Path(getattr(f, "path", None) or getattr(f, "name"))


class _TooLarge(Exception):
    pass


def _copy_capped(src: Path, dst: Path, max_bytes: int) -> None:
    """Copy src to a new file dst (never over an existing one), at most max_bytes, fsynced."""
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
        n = 0
        while block := fin.read(_COPY_CHUNK):
            n += len(block)
            if n > max_bytes:  # grew since it was checked
                raise _TooLarge
            fout.write(block)
        fout.flush()
        os.fsync(fout.fileno())



def remove_stale_temps(folder: Path, older_than: float = _STALE_SECONDS) -> None:
    """Delete temporary upload copies left by a crash (see the module's compromises)."""
    now = time.time()
    try:
        for p in folder.glob(TEMP_PREFIX + "*"):
            try:
                if now - p.lstat().st_mtime > older_than:
                    p.unlink()
            except OSError:
                pass
    except OSError:
        pass


def _outcome(rep, name: str) -> UploadResult:
    if getattr(rep, "failures", None):
        err = "; ".join(str(getattr(f, "error", f)) for f in rep.failures)
        return UploadResult("error", name, f"无法读取：{err}")
    if rep.added:
        return UploadResult("ok", name, f"已加入（{', '.join(rep.added)}），知识库现有 {rep.n_chunks} 个段落")
    if rep.updated:
        return UploadResult("ok", name, f"已更新（{', '.join(rep.updated)}），知识库现有 {rep.n_chunks} 个段落")
    return UploadResult("skip", name, "内容未变化，无需重新索引")


def store_and_index(kb, src: Path, dest_dir: Path, name: str, max_mb: int, progress: bool = False) -> UploadResult:
    """Index the upload `src` as `dest_dir/name` (name already sanitised) and only then store it
    there; on any failure the previous stored file and the index are left as they were."""
    from rag.ingest.load import load_file

    problem = validate_upload(src, max_mb, name)
    if problem:
        return UploadResult("error", name, problem)
    dest = dest_dir / name
    if dest.parent.resolve() != dest_dir.resolve():  # safe_filename makes this impossible; belt and braces
        return UploadResult("error", name, "无效的文件名")
    tmp = dest_dir / f"{TEMP_PREFIX}{uuid.uuid4().hex}{Path(name).suffix.lower()}"
    try:
        try:
            _copy_capped(src, tmp, max_mb * 1024 * 1024)
        except _TooLarge:
            return UploadResult("error", name, f"文件太大，上限 {max_mb} MB")
        except OSError as e:
            return UploadResult("error", name, f"文件无法保存（{e.strerror or e}）")
        try:
            from rag.ingest.ocr.document import ocr_progress

            with ocr_progress(progress):  # a scan shows a bar per page (track_tqdm)
                doc = load_file(tmp, root=dest_dir, source=str(dest), stored_as=dest)
        except IngestError as e:
            msg = str(e)
            msg = msg[len(str(dest)) + 2:] if msg.startswith(f"{dest}: ") else msg
            return UploadResult("error", name, f"无法读取：{msg}")
        try:
            rep = kb.add_documents([doc], progress=progress)
        except RagError as e:
            return UploadResult("error", name, str(e))
        result = _outcome(rep, name)
        if result.status == "error":
            return result
        os.replace(tmp, dest)  # the new version is indexed: now it may replace the stored file
        fsync_path(dest_dir)  # the rename itself is durable only once the folder is synced
        return result
    except Exception as e:  # a bug or an OS error: reported, never a traceback in the page
        log.exception("indexing the upload %s failed", name)
        return UploadResult("error", name, f"索引失败：{type(e).__name__}: {e}")
    finally:
        try:
            tmp.unlink()  # gone already after a successful replace
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("could not remove %s: %s", tmp, e)


def index_uploads(kb, dest_dir: Path, files: Sequence[Any], max_mb: int,
                  progress: Callable[..., Any] | None = None) -> list[tuple[str, str, str]]:
    """Validate, store and index uploaded files one by one; one bad file never stops the others.
    `progress((done, total), desc=…)` is called per file (gr.Progress).

    Returns (status, file name, message) per file for `ui.render.index_report_html`."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(dest_dir)
    files = list(files or [])
    lines: list[tuple[str, str, str]] = []
    for i, f in enumerate(files):
        p = upload_path(f)
        # Gradio keeps the original file name as the basename of its temp copy
        name = safe_filename(getattr(f, "orig_name", None) or p.name)
        if progress is not None:
            progress((i, len(files)), desc=f"索引 {name}（{i + 1}/{len(files)}）")
        # progress=True: the index's tqdm bars (chunking, embedding) show in the page via track_tqdm
        lines.append(store_and_index(kb, p, dest_dir, name, max_mb, progress=progress is not None).as_tuple())
    if progress is not None:
        progress((len(files), len(files)), desc="完成")
    return lines
