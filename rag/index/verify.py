"""Integrity of index versions: file checksums, the COMPLETE marker, the CURRENT history, cleanup.

A version folder is sealed in two steps (`seal`), after every data file is written:
  1. `manifest.json` gets a `files` table: size and sha256 of every other file of the version
     (chunks.jsonl, vectors.faiss, the BM25 files, config.json, …, found by walking the folder,
     so a file added later is covered without a change here); it is written to a temporary name,
     fsynced and renamed, so it is either whole or absent;
  2. `COMPLETE` is written last and holds `manifest.json <size> <sha256>`: a version without it is
     never loaded, and the manifest itself is checked against it.

Opening (`read_manifest`, `check_files`) always compares sizes (a stat per file: truncation, the
common damage, is caught even for a 300 MB index) and compares checksums of the files up to
`HASH_ON_OPEN_MAX` bytes. Deliberate compromise: a larger file (vectors.faiss, its int8 copy,
chunks.jsonl, documents.json or the BM25 matrix of a ≈100k-chunk KB) is hashed only where the whole file is read anyway or where the
time is expected — `rag kb check`, and before an incremental `rag index` builds on the version —
so opening stays well under a second while a bit flip inside a big file is still found by those.

Versions written before checksums existed (no `files` table; COMPLETE holds the corpus hash) are
"legacy": they open with structural checks only (`rag.index.build.IndexVersion` compares row counts
and file lengths) and are replaced, sealed, by the next build.

`CURRENT` lists the kept versions, newest first: line 1 is the active one, then `previous <name>`
lines. It is rewritten (temp file + os.replace) on every publish and holds at most
`KEEP_VERSIONS` names — the versions on disk — so it no longer grows a line per build.
`KEEP_VERSIONS` is 2 (the active version and one complete, undamaged fallback): every kept
version costs as much disk as the index itself, and a reader in another process may still be
using the previous one. A damaged CURRENT (empty, cut, naming a missing folder) is not fatal:
`candidates` falls back to the complete version folders on disk, newest first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from rag.errors import IndexDamaged
from rag.files import sha256_file

CURRENT = "CURRENT"
COMPLETE = "COMPLETE"
MANIFEST = "manifest.json"
KEEP_VERSIONS = 2
# sha256 runs at several hundred MB/s here: 16 MiB is ≈30 ms, so every file of a KB of a few
# thousand chunks is fully verified on open, and the open of a 100k-chunk KB stays fast.
HASH_ON_OPEN_MAX = 16 * 1024 * 1024

_NAME = re.compile(r"v[\w.\-]*")  # a version folder's name (rag.index.build.write_version), never a path
_COMPLETE_LINE = re.compile(r"manifest\.json (\d+) ([0-9a-f]{64})\s*")
_UNSEALED = (MANIFEST, COMPLETE)  # the files the table cannot describe (it lives in one of them)


@dataclass(frozen=True)
class Problem:
    """One damaged file of one version (for `rag kb check`: one line each)."""

    version: str
    file: str
    reason: str

    def error(self, where: Path) -> IndexDamaged:
        """The user-facing error; names the KB folder, version and file, never the full path."""
        kb = where.parent.name
        e = IndexDamaged(f"index {kb}/{self.version} is damaged: {self.file} {self.reason}; rebuild it with "
                         f"`rag index PATH --kb {kb} --rebuild` (or `rag kb repair --kb {kb}`)",
                         file=self.file, version=self.version)
        e.problem = self  # type: ignore[attr-defined]  # for `rag kb check`, which lists problems
        return e

    def __str__(self) -> str:
        return f"{self.version}/{self.file}: {self.reason}"



def file_table(folder: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file under `folder` except the manifest and COMPLETE."""
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and rel not in _UNSEALED:
            out[rel] = {"size": p.stat().st_size, "sha256": sha256_file(p)}
    return out


# ------------------------------------------------------------------ sealing and checking


def fsync_path(p: Path) -> None:
    try:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            fsync_path(p)
    fsync_path(folder)


def seal(folder: Path, manifest: dict) -> None:
    """Record the file table in `manifest`, write manifest.json atomically, then COMPLETE."""
    fsync_tree(folder)
    manifest["files"] = file_table(folder)
    data = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_bytes(data)
    fsync_path(tmp)
    os.replace(tmp, folder / MANIFEST)
    (folder / COMPLETE).write_text(f"manifest.json {len(data)} {hashlib.sha256(data).hexdigest()}\n", encoding="utf-8")
    fsync_path(folder / COMPLETE)
    fsync_path(folder)


def _read_complete(folder: Path) -> tuple[int, str] | None:
    """(size, sha256) of the manifest as COMPLETE records it; None if COMPLETE is not of that form."""
    try:
        m = _COMPLETE_LINE.fullmatch((folder / COMPLETE).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return (int(m.group(1)), m.group(2)) if m else None


def read_manifest(folder: Path) -> dict[str, Any]:
    """The version's manifest, checked against COMPLETE (size and checksum: it is small).
    Raises IndexDamaged naming manifest.json or COMPLETE."""
    v = folder.name
    sealed = _read_complete(folder)
    try:
        data = (folder / MANIFEST).read_bytes()
    except OSError as e:
        raise Problem(v, MANIFEST, f"cannot be read ({e.strerror or e})").error(folder) from None
    if sealed is not None:
        size, sha = sealed
        if len(data) != size:
            raise Problem(v, MANIFEST, f"is inconsistent with COMPLETE ({len(data)} bytes, expected {size}: "
                          "truncated or overwritten)").error(folder)
        if hashlib.sha256(data).hexdigest() != sha:
            raise Problem(v, MANIFEST, "is inconsistent with COMPLETE (checksum differs: altered)").error(folder)
    try:
        manifest = json.loads(data.decode("utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as e:
        raise Problem(v, MANIFEST, f"is not valid JSON ({e})").error(folder) from None
    if sealed is None and "files" in manifest:  # a sealed version whose COMPLETE was damaged
        raise Problem(v, COMPLETE, "is damaged (it must name the manifest's size and checksum)").error(folder)
    return manifest


def file_problems(folder: Path, manifest: dict[str, Any], full: bool = False) -> list[Problem]:
    """Every file of the manifest's table that is missing or differs in size, or (if `full`, or
    the file is at most HASH_ON_OPEN_MAX bytes) in checksum. A legacy version has no table: []."""
    out: list[Problem] = []
    table = manifest.get("files")
    if not isinstance(table, dict):
        return out
    for rel, rec in table.items():
        p = folder / rel
        if not isinstance(rec, dict) or ".." in Path(rel).parts:  # a table nobody wrote: never trust it
            out.append(Problem(folder.name, MANIFEST, f"has an unreadable entry for {rel!r}"))
            continue
        try:
            size = p.stat().st_size
        except OSError:
            out.append(Problem(folder.name, rel, "is missing"))
            continue
        if size != rec.get("size"):
            out.append(Problem(folder.name, rel, f"is inconsistent with the manifest ({size} bytes, expected "
                                                 f"{rec.get('size')}: truncated or overwritten)"))
        elif (full or size <= HASH_ON_OPEN_MAX) and sha256_file(p) != rec.get("sha256"):
            out.append(Problem(folder.name, rel, "is inconsistent with the manifest (checksum differs: altered)"))
    return out


def check_files(folder: Path, manifest: dict[str, Any], full: bool = False) -> None:
    """Raise IndexDamaged for the first damaged file (see `file_problems`)."""
    problems = file_problems(folder, manifest, full)
    if problems:
        raise problems[0].error(folder)


def version_problems(folder: Path, full: bool = True) -> list[Problem]:
    """All problems of one version folder, without opening FAISS or BM25 (for `rag kb check`)."""
    if not (folder / COMPLETE).exists():
        return [Problem(folder.name, COMPLETE, "is missing (an interrupted build, or deleted)")]
    try:
        manifest = read_manifest(folder)
    except IndexDamaged as e:
        return [getattr(e, "problem", None) or Problem(folder.name, e.file, str(e))]
    if not isinstance(manifest.get("files"), dict):
        return []  # legacy: nothing recorded to compare against
    return file_problems(folder, manifest, full)


# ------------------------------------------------------------------ CURRENT and its history


def read_history(kb_dir: Path) -> tuple[list[str], str | None]:
    """(version names CURRENT lists, newest first; a problem with CURRENT itself, or None)."""
    cur = Path(kb_dir) / CURRENT
    try:
        text = cur.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return [], None
    except OSError as e:
        return [], f"cannot be read ({e.strerror or e})"
    names: list[str] = []
    bad_line = 0
    for i, ln in enumerate(text.splitlines()):
        name = ln.strip() if i == 0 else (ln[len("previous "):].strip() if ln.startswith("previous ") else "")
        if _NAME.fullmatch(name):
            if name not in names:
                names.append(name)
        elif ln.strip() and not bad_line:
            bad_line = i + 1
    if not names:
        return [], "is empty or damaged"
    if not (Path(kb_dir) / names[0] / COMPLETE).exists():
        return names, f"names {names[0]!r}, which is not a complete version (damaged or deleted)"
    if bad_line or not text.endswith("\n"):  # written whole, a CURRENT ends with a newline
        return names, f"is damaged (line {bad_line or len(text.splitlines())} is cut or unreadable)"
    return names, None


def candidates(kb_dir: Path) -> list[Path]:
    """Version folders to try, best first: those CURRENT lists that are complete, then any other
    complete `v…` folder on disk, newest first (names start with the build time)."""
    kb_dir = Path(kb_dir)
    names, _ = read_history(kb_dir)
    out = [kb_dir / n for n in names if (kb_dir / n / COMPLETE).exists()]
    try:
        others = sorted((p for p in kb_dir.iterdir() if p.is_dir() and p.name.startswith("v")
                         and (p / COMPLETE).exists() and p not in out), key=lambda p: p.name, reverse=True)
    except OSError:
        others = []
    return out + others


def publish(kb_dir: Path, name: str, keep: Iterable[str] = ()) -> None:
    """Make `name` current; CURRENT then lists `name` and the kept versions (`keep`, newest first),
    at most KEEP_VERSIONS names."""
    kb_dir = Path(kb_dir)
    names = [name] + [n for n in keep if n != name][: KEEP_VERSIONS - 1]
    tmp = kb_dir / f".{CURRENT}.{os.getpid()}.tmp"
    tmp.write_text(names[0] + "\n" + "".join(f"previous {n}\n" for n in names[1:]), encoding="utf-8")
    fsync_path(tmp)
    os.replace(tmp, kb_dir / CURRENT)
    fsync_path(kb_dir)


def fallback_names(kb_dir: Path, new: str, drop: Iterable[str] = ()) -> list[str]:
    """The versions to keep beside a newly built `new`: the newest complete ones CURRENT lists (or,
    if CURRENT is damaged, found on disk) that pass the cheap checks of an open (sizes, small
    files' checksums; nothing is parsed but the manifest), minus `drop` (known to be damaged).
    So a rebuild over a damaged version keeps an undamaged fallback, not the damaged one."""
    dropped = set(drop) | {new}
    out: list[str] = []
    for p in candidates(kb_dir):
        if len(out) >= KEEP_VERSIONS - 1:
            break
        if p.name not in dropped and not version_problems(p, full=False):
            out.append(p.name)
    return out


def cleanup(kb_dir: Path, keep: set[str]) -> None:
    """Remove version folders other than `keep`, and stale temp folders. The caller holds the
    write lock, so no other build is in progress; a reader in another process uses the current
    or the previous version, which `keep` holds."""
    for p in Path(kb_dir).iterdir():
        if p.is_dir() and p.name not in keep and (p.name.startswith("v") or p.name.startswith(".tmp-")):
            shutil.rmtree(p, ignore_errors=True)
