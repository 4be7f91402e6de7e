"""Which paths ingest may read: folder walking, file-type checks, and a bounded, non-blocking read.

A folder given to `rag index`/`rag chunk` can hold things that are not files: a symlink loop
(`a.txt -> a.txt`), a dangling link, a named pipe (FIFO) called `x.txt` (opening it for reading
blocks until a writer appears — forever), a socket or a device node. Each is *reported* (one
`Skipped(path, reason)` per entry, which `rag.ingest.load` turns into an `IngestFailure`, the one-line
report the CLI and the web chat already show) and skipped; the rest of the folder is read.

Rules:
- a file is read only if `os.stat` (following a symlink once, via the kernel) says it is a
  regular file; special files are classified from `lstat`/`stat` metadata and never opened;
- `read_regular_file` opens with O_NONBLOCK and checks `fstat` again before reading, so a file
  swapped for a FIFO between the check and the open still cannot hang the run (opening a FIFO
  non-blocking for reading returns at once; it is closed unread);
- at most `max_bytes + 1` bytes are read, so a file that grows while read is refused, not
  swallowed whole;
- symlinked folders are followed, once: every walked folder is remembered by (st_dev, st_ino); a
  link back to one of its own ancestors is reported as a loop, a link to a folder already walked
  under another name is skipped quietly (its files are already in). Links are followed only
  after the real folders of the tree, so a file's document id is its real path whenever the file
  is reachable without a link.

Deliberate compromise: entries whose suffix ingest does not support are ignored without a look
(no stat), as before; a broken or looping link is reported only when its name has a supported
suffix or no suffix at all (it may have been a folder) — a dead `foo.csv` link is not news.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Collection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Skipped:
    """An entry that was not read, and why (the reason is meant for the user)."""

    path: str
    reason: str


class NotAFile(Exception):
    """Raised by `read_regular_file` for an entry that is not a readable regular file; the
    message is the user-facing reason (no path)."""


_SPECIAL = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_kind(mode: int) -> str | None:
    """'a named pipe (FIFO)' etc. for a special file's st_mode; None for files and folders."""
    for test, what in _SPECIAL:
        if test(mode):
            return what
    return None


def _link_target(path: str | os.PathLike) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def check_entry(path: str | os.PathLike) -> tuple[str, os.stat_result | None, str]:
    """(kind, stat of the target, reason) for one path, without opening it.

    kind is "file" (a regular file, maybe through a symlink), "dir", "missing" or "bad" (reason
    says why: symlink loop, broken link, FIFO, socket, device, unreadable metadata)."""
    try:
        lst = os.lstat(path)
    except FileNotFoundError:
        return "missing", None, "no such file or folder"
    except OSError as e:
        return "bad", None, f"cannot inspect it ({e.strerror or e})"
    st = lst
    if stat.S_ISLNK(lst.st_mode):
        try:
            st = os.stat(path)
        except OSError as e:
            target = _link_target(path)
            if e.errno == errno.ELOOP:
                return "bad", None, f"symbolic link loop (→ {target}); skipped, never followed"
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                return "bad", None, f"broken symbolic link (→ {target} does not exist); skipped"
            return "bad", None, f"cannot follow the symbolic link → {target} ({e.strerror or e})"
    if stat.S_ISDIR(st.st_mode):
        return "dir", st, ""
    if stat.S_ISREG(st.st_mode):
        return "file", st, ""
    what = special_kind(st.st_mode) or f"not a regular file (mode {st.st_mode:o})"
    return "bad", st, f"{what}, not a regular file; skipped without opening it"


def read_regular_file(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; raises NotAFile (special file, loop,
    folder, too large) or OSError (permissions, I/O). A FIFO is never opened (see module doc)."""
    kind, st, reason = check_entry(path)
    if kind == "missing":
        raise FileNotFoundError(errno.ENOENT, "file not found", str(path))
    if kind == "dir":
        raise NotAFile("is a folder; pass it to load_paths")
    if kind != "file":
        raise NotAFile(reason)
    _check_size(st.st_size, max_bytes)
    # O_NONBLOCK: if the file became a FIFO since the check, open returns at once instead of
    # waiting for a writer; for a regular file the flag changes nothing
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise NotAFile(f"{special_kind(st.st_mode) or 'not a regular file'}; skipped without reading it")
        _check_size(st.st_size, max_bytes)
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise NotAFile(f"file too large (grew past {_size(max_bytes)} while being read); split it first")
    return data


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.1f} KB"


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise NotAFile(f"file too large ({_size(size)}; the limit is {_size(max_bytes)}); split it first")


# ------------------------------------------------------------------ folders


def _reportable(name: str, suffixes: Collection[str]) -> bool:
    suffix = Path(name).suffix.lower()
    return suffix in suffixes or suffix == ""


class _Walker:
    """One walk of one folder (see `walk_folder`)."""

    def __init__(self, suffixes: Collection[str]):
        self.suffixes = {s.lower() for s in suffixes}
        self.files: list[Path] = []
        self.skipped: list[Skipped] = []
        self.visited: dict[tuple[int, int], str] = {}  # (st_dev, st_ino) → the path it was walked as
        self.links: deque[tuple[str, tuple[tuple[int, int], ...]]] = deque()  # (link, ancestors' ids)

    def tree(self, top: str, top_id: tuple[int, int], ancestors: tuple[tuple[int, int], ...]) -> None:
        """Walk `top` and the real folders below it (iteratively: no recursion limit); symlinked
        folders found on the way are queued in `self.links`."""
        self.visited[top_id] = top
        stack = [(top, ancestors + (top_id,))]
        while stack:
            folder, chain = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as e:
                self.skipped.append(Skipped(folder, f"cannot read the folder ({e.strerror or e}); skipped"))
                continue
            subdirs = []
            for e in entries:
                sub = self.entry(e, chain)
                if sub is not None:
                    subdirs.append(sub)
            stack.extend(reversed(subdirs))  # depth-first in name order

    def entry(self, e: os.DirEntry, chain: tuple[tuple[int, int], ...]):
        """Handle one directory entry; returns (path, chain) of a real sub-folder to walk."""
        name = e.name
        if name.startswith("."):
            return None  # hidden files and folders (.git, .DS_Store, our own upload temp files)
        try:
            is_link = e.is_symlink()
            is_dir = not is_link and e.is_dir(follow_symlinks=False)
        except OSError as err:
            self.skipped.append(Skipped(e.path, f"cannot inspect it ({err.strerror or err})"))
            return None
        if is_dir:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError as err:
                self.skipped.append(Skipped(e.path, f"cannot inspect the folder ({err.strerror or err})"))
                return None
            key = (st.st_dev, st.st_ino)
            if key in self.visited:  # a bind mount or similar: same folder seen again
                self._seen_again(e.path, key, chain)
                return None
            self.visited[key] = e.path
            return (e.path, chain + (key,))
        if is_link:
            kind, st, reason = check_entry(e.path)
            if kind == "dir":
                self.links.append((e.path, chain))
            elif kind == "file":
                self._file(e.path, name)
            elif _reportable(name, self.suffixes):
                self.skipped.append(Skipped(e.path, reason))
            return None
        if name.startswith("~$") or Path(name).suffix.lower() not in self.suffixes:
            return None  # Office lock files; unsupported types are not looked at
        try:
            mode = e.stat(follow_symlinks=False).st_mode
        except OSError as err:
            self.skipped.append(Skipped(e.path, f"cannot inspect it ({err.strerror or err})"))
            return None
        if stat.S_ISREG(mode):
            self.files.append(Path(e.path))
        else:
            what = special_kind(mode) or f"not a regular file (mode {mode:o})"
            self.skipped.append(Skipped(e.path, f"{what}, not a regular file; skipped without opening it"))
        return None

    def _file(self, path: str, name: str) -> None:
        if not name.startswith("~$") and Path(name).suffix.lower() in self.suffixes:
            self.files.append(Path(path))

    def _seen_again(self, path: str, key: tuple[int, int], chain) -> None:
        if key in chain:
            self.skipped.append(Skipped(path, f"symbolic link loop: leads back to {self.visited[key]}, "
                                              "which contains it; not followed"))
        else:  # reached twice without a loop: its files are already in under the first path
            log.info("%s is the folder %s, already read; not read twice", path, self.visited[key])

    def follow_links(self) -> None:
        """Follow the queued symlinked folders, each at most once (loops reported)."""
        while self.links:
            link, chain = self.links.popleft()
            try:
                st = os.stat(link)
            except OSError as e:  # removed or changed since it was queued
                self.skipped.append(Skipped(link, f"cannot follow the symbolic link ({e.strerror or e})"))
                continue
            key = (st.st_dev, st.st_ino)
            if key in self.visited:
                self._seen_again(link, key, chain)
                continue
            self.tree(link, key, chain)


def walk_folder(folder: str | os.PathLike, suffixes: Collection[str]) -> list[tuple[Path, Skipped | None]]:
    """Every file with a supported suffix under `folder` as (path, None), and every entry that was
    reported instead as (path, Skipped), sorted by path (deterministic ids and report order).
    Hidden entries (".…") and Office lock files ("~$…") are left out without a word."""
    w = _Walker(suffixes)
    top = os.fspath(folder)
    st = os.stat(top)  # the caller checked it is a folder (a link to one is fine)
    w.tree(top, (st.st_dev, st.st_ino), ())
    w.follow_links()
    items: list[tuple[Path, Skipped | None]] = [(f, None) for f in w.files]
    items += [(Path(s.path), s) for s in w.skipped]
    items.sort(key=lambda it: it[0].as_posix())
    return items
