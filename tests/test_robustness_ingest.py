"""Issue 11, findings 4 and 5: ingest edge cases never stop a run, an interrupted index resumes,
and an upload never loses the user's file.

- a self-referencing symlink, a dangling link, a FIFO and a socket named `*.txt` are reported
  (one failure each) and skipped while the other files index — through `load_paths`, `rag index`
  and `rag chunk`; every call that could block runs in a thread joined with a timeout, so a
  regression fails instead of hanging the suite;
- symlinked folders are followed once; a symlink cycle of folders is reported;
- the size limit is reported;
- an index interrupted after N embedding batches (a fake encoder that raises) resumes: the
  re-run encodes only the chunks that were not cached (encoder calls counted);
- a failed re-upload keeps the stored original and the index still answers from it; upload
  names cannot escape the uploads folder.

Small Chinese fixtures in tmp_path, FakeEncoder, a paragraph chunker (fast, no models).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from embeddings import FakeEncoder
from rag.config import load_config
from rag.index.kb import KnowledgeBase
from rag.types import Chunk, Document

pytestmark = pytest.mark.timeout(120)  # a last resort: the thread joins below fail first

GOOD = "安达市委组织部扎实推进学习型党组织建设，开展创先争优活动。\n"
OTHER = "哈尔滨市举办冰雪节，冰雪大世界吸引了大量游客。\n"
TIMEOUT = 30.0


def run_bounded(fn, *args, timeout: float = TIMEOUT, **kwargs):
    """fn(*args) in a daemon thread; fails the test if it does not return within `timeout`."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as e:  # re-raised in the test's thread
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"{getattr(fn, '__name__', fn)} did not return within {timeout} s (blocked on a FIFO?)"
    if "error" in out:
        raise out["error"]
    return out["value"]


class CountingEncoder(FakeEncoder):
    """FakeEncoder that records every passage it encodes and can fail after `fail_after` calls."""

    def __init__(self, dim: int = 64, fail_after: int | None = None):
        super().__init__(dim, "fake")
        self.calls: list[list[str]] = []
        self.fail_after = fail_after

    @property
    def passages(self) -> list[str]:
        return [t for c in self.calls for t in c]

    def encode_passages(self, texts, show_progress=False):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise Interrupted(f"interrupted after {len(self.calls)} batches")
        self.calls.append(list(texts))
        return super().encode_passages(texts)


class Interrupted(Exception):
    """Stands in for Ctrl-C / a kill in the middle of `rag index`."""


def para_chunker(doc: Document, _cc) -> list[Chunk]:
    """One chunk per non-empty line (spans into the original text)."""
    out, pos = [], 0
    for line in [ln for ln in doc.clean.split("\n") if ln.strip()]:
        s = doc.clean.index(line, pos)
        pos = s + len(line)
        a, b = doc.orig_span(s, pos)
        n = len(out)
        out.append(Chunk(f"{doc.doc_id}#{n}", doc.doc_id, n, doc.title, (), line, a, b, doc.source, dict(doc.metadata)))
    return out


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    return load_config(overrides={"embed": {"model": "fake-64"}})


def open_kb(cfg, enc=None, name="t"):
    kb = KnowledgeBase.open(name, cfg, encoder=enc or CountingEncoder(), create=True)
    kb.chunk_fn = para_chunker
    return kb


def _unix_socket(path: Path):
    """A listening socket file at `path`, or None where paths that long cannot be bound."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(str(path))
    except OSError:
        s.close()
        return None
    return s


def hostile_folder(root: Path) -> dict[str, str]:
    """good.txt and sub/other.md plus entries that must be reported: name → expected word."""
    root.mkdir()
    (root / "good.txt").write_text(GOOD, encoding="utf-8")
    (root / "sub").mkdir()
    (root / "sub" / "other.md").write_text("# 冰雪节\n\n" + OTHER, encoding="utf-8")
    os.symlink("a.txt", root / "a.txt")  # a.txt -> a.txt
    os.symlink("nowhere.txt", root / "dangling.txt")
    os.mkfifo(root / "x.txt")
    expected = {"a.txt": "loop", "dangling.txt": "broken", "x.txt": "FIFO"}
    sock = _unix_socket(root / "s.txt")
    if sock is not None:
        sock.close()  # the socket file stays: a socket entry, not a listener, is what ingest meets
        expected["s.txt"] = "socket"
    return expected


# ====================================================================== special files


def test_symlink_loop_fifo_socket_reported_and_skipped(tmp_path):
    from rag.ingest.load import load_paths

    root = tmp_path / "docs"
    expected = hostile_folder(root)
    docs, failures = run_bounded(load_paths, [root])
    assert sorted(d.doc_id for d in docs) == ["good", "sub/other"]
    msgs = {Path(f.path).name: f.error for f in failures}
    assert set(msgs) == set(expected), msgs
    for name, word in expected.items():
        assert word in msgs[name], (name, msgs[name])
    assert "skipped" in msgs["x.txt"] and "without opening" in msgs["x.txt"]


def test_special_files_given_by_name(tmp_path):
    from rag.errors import IngestError
    from rag.ingest.load import load_file, load_paths

    os.mkfifo(tmp_path / "p.txt")
    os.symlink("loop.txt", tmp_path / "loop.txt")
    docs, failures = run_bounded(load_paths, [tmp_path / "p.txt", tmp_path / "loop.txt"])
    assert docs == [] and len(failures) == 2
    assert "FIFO" in failures[0].error and "loop" in failures[1].error
    with pytest.raises(IngestError, match="FIFO"):
        run_bounded(load_file, tmp_path / "p.txt")
    with pytest.raises(IngestError, match="character device"):
        run_bounded(load_file, Path("/dev/zero"), stored_as=tmp_path / "zero.txt")


def test_rag_index_and_rag_chunk_report_special_files(tmp_path, monkeypatch, capsys):
    from rag.apps.cli import main

    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAG_EMBED_MODEL", "fake")
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps at 80 columns when not on a terminal
    root = tmp_path / "docs"
    expected = hostile_folder(root)
    assert run_bounded(main, ["index", str(root), "--kb", "h", "--json"]) == 1  # 1: some files failed
    rep = json.loads(capsys.readouterr().out)
    assert sorted(rep["added"]) == ["good", "sub/other"]
    assert sorted(Path(f["path"]).name for f in rep["failures"]) == sorted(expected)
    # the human summary: one line per skipped entry
    assert run_bounded(main, ["index", str(root), "--kb", "h"]) == 1
    out = capsys.readouterr().out
    for name in expected:
        assert sum(1 for ln in out.splitlines() if ln.strip().startswith("✗") and name in ln) == 1, out
    assert run_bounded(main, ["chunk", str(root), "--json"]) == 0
    err = capsys.readouterr().err
    assert all(f"skipped {root / n}" in err for n in expected), err


# ====================================================================== symlinked folders


def test_symlinked_folder_followed_once(tmp_path):
    from rag.ingest.load import load_paths

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.txt").write_text(OTHER, encoding="utf-8")
    root = tmp_path / "docs"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.txt").write_text(GOOD, encoding="utf-8")
    os.symlink(root / "real", root / "alias")  # a second name for a folder inside the tree
    os.symlink(outside, root / "ext")  # a folder outside the tree
    os.symlink(outside, root / "ext2")  # ... reached twice
    docs, failures = run_bounded(load_paths, [root])
    # the real path wins over the alias; the outside folder is read once, under the first link
    assert sorted(d.doc_id for d in docs) == ["ext/b", "real/a"]
    assert failures == []


def test_symlink_cycle_of_folders_reported(tmp_path):
    from rag.ingest.load import load_paths

    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "c.txt").write_text(GOOD, encoding="utf-8")
    os.symlink("..", root / "sub" / "up")  # sub/up -> docs: its own ancestor
    o1, o2 = tmp_path / "o1", tmp_path / "o2"
    o1.mkdir()
    o2.mkdir()
    (o2 / "d.txt").write_text(OTHER, encoding="utf-8")
    os.symlink(o1, root / "l1")  # docs/l1 -> o1, o1/l2 -> o2, o2/l3 -> o1: a cycle outside the tree
    os.symlink(o2, o1 / "l2")
    os.symlink(o1, o2 / "l3")
    docs, failures = run_bounded(load_paths, [root])
    assert sorted(d.doc_id for d in docs) == ["l1/l2/d", "sub/c"]
    loops = {Path(f.path).name: f.error for f in failures}
    assert set(loops) == {"up", "l3"} and all("loop" in e for e in loops.values()), loops


def test_size_limit_reported(tmp_path, monkeypatch):
    import rag.ingest.load
    from rag.ingest.load import load_paths

    monkeypatch.setattr(rag.ingest.load, "MAX_BYTES", 2048)
    (tmp_path / "small.txt").write_text(GOOD, encoding="utf-8")
    (tmp_path / "big.txt").write_text(GOOD * 100, encoding="utf-8")
    docs, failures = load_paths([tmp_path])
    assert [d.doc_id for d in docs] == ["small"]
    assert len(failures) == 1 and "file too large" in failures[0].error and "split it" in failures[0].error


# ====================================================================== interrupted indexing


def _big_doc(n: int) -> Document:
    text = "".join(f"第{i}段：安达市第{i}个社区开展创先争优活动，参加党员{i * 7}名。\n" for i in range(n))
    return Document("big", "big.txt", "大文件", text, text, list(range(len(text))), {"sha256": "x"})


def test_interrupted_index_resumes_with_cached_vectors(cfg, monkeypatch):
    import rag.index.embed_batches

    monkeypatch.setattr(rag.index.embed_batches, "CACHE_BATCH", 5)
    doc = _big_doc(40)
    first = CountingEncoder(fail_after=3)  # three batches of 5 done, then "Ctrl-C"
    kb = open_kb(cfg, first)
    with pytest.raises(Interrupted):
        kb.add_documents([doc])
    assert kb.version is None  # nothing was published
    done = first.passages
    assert len(done) == 15
    again = CountingEncoder()
    kb2 = open_kb(cfg, again)
    rep = kb2.add_documents([doc])
    assert rep.added == ["big"] and rep.n_chunks == 40
    assert rep.embedded == 25 and rep.reused_vectors == 15
    assert len(again.passages) == 25 and not set(again.passages) & set(done)  # nothing encoded twice
    assert len(again.calls) == 5  # in batches
    hit = kb2.search("第7个社区", k=1, mode="bm25")[0]
    assert hit.chunk.doc_id == "big"
    # the vectors that came from the cache are the encoder's vectors
    v = kb2.version
    row = v.row_of["big#0"]
    np.testing.assert_allclose(v.vectors([row])[0], FakeEncoder(64).encode_passages([kb2.get_chunk("big#0").embed_text])[0], atol=1e-6)


def test_embed_missing_batches_dedupes_and_shows_progress(tmp_path, capsys):
    from embeddings.cache import VectorCache
    from rag.index.embed_batches import embed_missing

    cache = VectorCache(tmp_path / "vectors")
    enc = CountingEncoder()
    texts = [f"段落{i}" for i in range(7)] + ["段落0"]
    vecs, n = embed_missing(enc, texts, cache, progress=True, batch_size=3)
    assert n == 7 and [len(c) for c in enc.calls] == [3, 3, 1] and cache.count() == 7
    np.testing.assert_allclose(vecs[7], vecs[0])
    err = capsys.readouterr().err
    assert "passage/s" in err and "7/7" in err  # tqdm: rate and count (time left while running)
    vecs2, n2 = embed_missing(enc, texts, cache)
    assert n2 == 0 and len(enc.calls) == 3
    np.testing.assert_allclose(vecs2, vecs)


# ====================================================================== uploads


def _upload(path: Path, orig_name: str | None = None):
    return SimpleNamespace(path=str(path), orig_name=orig_name or path.name)


def test_failed_reupload_keeps_the_original_and_the_index(cfg, tmp_path):
    from rag.index.uploads import index_uploads

    kb = open_kb(cfg)
    dest = tmp_path / "home" / "uploads" / "t"
    src = tmp_path / "browser"
    src.mkdir()
    good = src / "报告.txt"
    good.write_text(GOOD, encoding="utf-8")
    [(st, name, msg)] = index_uploads(kb, dest, [_upload(good)], max_mb=1)
    assert (st, name) == ("ok", "报告.txt"), msg
    original = (dest / "报告.txt").read_bytes()
    version = kb.version.path
    # the same name again, now a broken file: refused, the stored file and the index untouched
    broken = src / "broken"
    broken.write_bytes(b"\x00\x01\x02binary" * 50)
    [(st, name, msg)] = index_uploads(kb, dest, [_upload(broken, "报告.txt")], max_mb=1)
    assert st == "error" and name == "报告.txt" and "无法读取" in msg
    assert (dest / "报告.txt").read_bytes() == original
    assert kb.version.path == version and [d.doc_id for d in kb.documents()] == ["报告"]
    hit = kb.search("创先争优活动", k=1)[0]
    assert hit.chunk.doc_id == "报告" and hit.chunk.source == str(dest / "报告.txt")
    # indexing itself fails (the encoder breaks): same guarantee
    other = src / "new.txt"
    other.write_text(OTHER, encoding="utf-8")
    kb._encoder = CountingEncoder(fail_after=0)
    [(st, _, msg)] = index_uploads(kb, dest, [_upload(other, "报告.txt")], max_mb=1)
    assert st == "error" and (dest / "报告.txt").read_bytes() == original and kb.version.path == version
    kb._encoder = CountingEncoder()
    # a good new version replaces it
    [(st, _, msg)] = index_uploads(kb, dest, [_upload(other, "报告.txt")], max_mb=1)
    assert st == "ok" and "已更新" in msg and (dest / "报告.txt").read_text(encoding="utf-8") == OTHER
    assert kb.search("冰雪节", k=1, mode="bm25")[0].chunk.doc_id == "报告"
    assert sorted(p.name for p in dest.iterdir()) == ["报告.txt"]  # no temporary copies left


def test_upload_names_and_sizes(cfg, tmp_path):
    from rag.index.uploads import index_uploads, safe_filename

    kb = open_kb(cfg)
    dest = tmp_path / "home" / "uploads" / "t"
    f = tmp_path / "f.txt"
    f.write_text(GOOD, encoding="utf-8")
    lines = index_uploads(kb, dest, [_upload(f, "../../evil.txt"), _upload(f, "..\\..\\win.txt"),
                                     _upload(f, ".hidden.txt")], max_mb=1)
    assert [ln[:2] for ln in lines] == [("ok", "evil.txt"), ("ok", "win.txt"), ("ok", "hidden.txt")]
    assert sorted(p.name for p in dest.iterdir()) == ["evil.txt", "hidden.txt", "win.txt"]
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "home" / "evil.txt").exists()
    assert safe_filename("a\x00b\u202e.txt") == "ab.txt" and safe_filename("") == "upload"
    long = safe_filename("长" * 200 + ".txt")
    assert long.endswith(".txt") and len(long.encode("utf-8")) <= 255
    big = tmp_path / "big.txt"
    big.write_bytes(GOOD.encode("utf-8") * 40000)  # ≈ 3.6 MB
    [(st, _, msg)] = index_uploads(kb, dest, [_upload(big)], max_mb=1)
    assert st == "error" and "上限 1 MB" in msg and not (dest / "big.txt").exists()


def test_web_chat_upload_goes_through_rag_uploads(cfg, tmp_path):
    from rag.apps.service import Services, index_uploads

    kb = open_kb(cfg)
    svc = Services(cfg, kb_opener=lambda name, c, create: kb, kb_lister=lambda c: ["t"])
    f = tmp_path / "报告.txt"
    f.write_text(GOOD, encoding="utf-8")
    assert index_uploads(svc, "t", [f])[0][0] == "ok"
    f.write_bytes(b"")
    assert index_uploads(svc, "t", [f]) == [("error", "报告.txt", "文件是空的")]
    assert (svc.uploads_dir("t") / "报告.txt").read_text(encoding="utf-8") == GOOD
