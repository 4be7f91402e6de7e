"""A KB that verifies itself (issue 11, finding 2): a damaged index file gives an error naming it
(or a fallback to the previous version), `rag index --rebuild` always recovers, an incremental
`rag index` detects the damage and rebuilds, CURRENT stays bounded, a crash mid-build leaves the
previous version usable, and `rag kb check` / `rag kb repair` do what they say.

The files damaged are the files a version folder actually contains (collected by building a tiny
version at collection time), so a file added to the index later is covered without editing here.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

import pytest

import rag.index.build as index_mod
import rag.index.verify as verify_mod
from embeddings import FakeEncoder
from rag.apps.cli import main
from rag.config import load_config
from rag.errors import IndexDamaged, IndexMissing
from rag.index.build import COMPLETE, CURRENT, IndexVersion, build_version, current_version_path
from rag.index.verify import KEEP_VERSIONS, read_history
from rag.index.kb import KnowledgeBase
from test_kb import CountingEncoder, mkdoc, para_chunker

TEXTS = {
    "anda.txt": "安达市委组织部扎实推进学习型党组织建设。\n\n开展创先争优活动，党员带头。",
    "harbin.txt": "哈尔滨市举办冰雪节，吸引了大量游客。\n\n冰雪大世界占地六十万平方米。",
    "apple.txt": "苹果公司发布新款手机，售价五千九百九十九元。",
}
# many documents, one paragraph each: a cut chunks.jsonl loses the rows of the later ones
MANY = {f"d{i:02d}": f"第{i}号文件：城市{i}举办第{i}届文化节，参观人数{i}万。" for i in range(12)}


def _version_files() -> list[str]:
    """Every file of a freshly built version, relative to the version folder."""
    tmp = Path(tempfile.mkdtemp(prefix="rag-version-files-"))
    try:
        cfg = load_config(overrides={"embed": {"model": "fake-64", "cache": False}, "paths": {"home": str(tmp)}})
        docs = [mkdoc(k, v) for k, v in TEXTS.items()]
        path, _ = build_version(tmp / "kb", None, docs, cfg, FakeEncoder(64), chunk_fn=para_chunker, analyzer="bigram")
        return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


VERSION_FILES = _version_files()


def test_the_version_files_are_the_expected_ones():
    # a sanity check of the collection above (the parametrised tests below use whatever it found)
    assert {"chunks.jsonl", "chunks.offsets.npy", "vectors.faiss", "bm25_params.json", "bm25_tokens.npy",
            "bm25_offsets.npy", "config.json", "manifest.json", COMPLETE} <= set(VERSION_FILES)
    assert any(f.startswith("bm25s/") for f in VERSION_FILES)


# ------------------------------------------------------------------ helpers


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAG_EMBED_MODEL", "fake-64")  # the CLI's encoder = the API tests' CountingEncoder
    return load_config()


@pytest.fixture
def docs(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    for name, text in TEXTS.items():
        (d / name).write_text(text + "\n", encoding="utf-8")
    return d


def damage(path: Path, how: str) -> None:
    """Truncate a file to half or to zero bytes, or flip one byte in its second half."""
    data = path.read_bytes()
    if how == "half":
        path.write_bytes(data[: len(data) // 2])
    elif how == "zero":
        path.write_bytes(b"")
    else:
        i = len(data) * 3 // 4
        path.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :])


def cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def search_top(capsys, kb: str, query: str) -> str:
    rc, out, err = cli(capsys, "search", query, "--kb", kb, "-k", "1", "--json")
    assert rc == 0, err
    return json.loads(out)["hits"][0]["doc_id"]


def api_kb(cfg, name="t", docs_=None, builds=1):
    """A KB built through the API (paragraph chunker, fake encoder): fast, several versions."""
    kb = KnowledgeBase.open(name, cfg, encoder=CountingEncoder(), create=True)
    kb.chunk_fn = para_chunker
    items = list((docs_ or MANY).items())
    step = max(1, len(items) // builds)
    for b in range(builds):
        kb.add_documents([mkdoc(k, v) for k, v in items[: (b + 1) * step if b < builds - 1 else len(items)]])
    return kb


def reopen(cfg, name="t"):
    kb = KnowledgeBase.open(name, cfg, encoder=CountingEncoder())
    kb.chunk_fn = para_chunker
    return kb


# ------------------------------------------------------------------ each file, truncated


@pytest.mark.parametrize("how", ["half", "zero"])
@pytest.mark.parametrize("rel", VERSION_FILES)
def test_truncated_file_is_named_and_rebuild_recovers(cfg, docs, capsys, rel, how):
    assert cli(capsys, "index", str(docs), "--kb", "r", "--json")[0] == 0
    v = current_version_path(cfg.paths.kb_dir("r"))
    target = v / rel
    if target.stat().st_size == 0:
        pytest.skip(f"{rel} is empty: truncating it changes nothing")
    damage(target, how)

    # opening names the damaged file (no fallback: this KB has a single version)
    with pytest.raises(IndexDamaged) as ei:
        KnowledgeBase.open("r", cfg)
    assert ei.value.file == rel and rel in str(ei.value) and ei.value.version == v.name
    # the CLI prints it as one line, never a traceback
    rc, out, err = cli(capsys, "search", "冰雪节", "--kb", "r")
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1 and rel in err

    # --rebuild reads nothing of the damaged version and succeeds; search works again
    rc, out, err = cli(capsys, "index", str(docs), "--kb", "r", "--rebuild", "--json")
    assert rc == 0, err
    assert search_top(capsys, "r", "冰雪大世界占地多少") == "harbin"
    assert not KnowledgeBase.open("r", cfg).damage

    # the same damage again, then a plain (incremental) `rag index`: detected, rebuilt, reported
    damage(current_version_path(cfg.paths.kb_dir("r")) / rel, how)
    rc, out, err = cli(capsys, "index", str(docs), "--kb", "r", "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["repaired"] and any(rel in line for line in report["repaired"])
    assert search_top(capsys, "r", "苹果公司的新手机售价") == "apple"
    kb = KnowledgeBase.open("r", cfg)
    assert not kb.damage and len(kb.documents()) == 3


@pytest.mark.parametrize("rel", VERSION_FILES)
def test_damaged_current_falls_back_to_previous_version(cfg, caplog, rel):
    kb = api_kb(cfg, builds=2)  # previous version: the first half of MANY; current: all of it
    cur = kb.version.path
    names, _ = read_history(kb.path)
    assert len(names) == 2 and names[0] == cur.name
    if (cur / rel).stat().st_size == 0:
        pytest.skip(f"{rel} is empty")
    damage(cur / rel, "half")
    with caplog.at_level(logging.WARNING, logger="rag.index.kb"):
        fresh = reopen(cfg)
    assert fresh.version.path.name == names[1]  # the previous, complete version
    assert fresh.damage and fresh.damage[0].file == rel
    assert any(rel in r.getMessage() and names[1] in r.getMessage() for r in caplog.records)
    assert fresh.search("城市1举办第1届文化节", k=1)[0].chunk.doc_id == "d01"
    # the next build starts from the undamaged version; the damaged one is gone, not kept as fallback
    r = fresh.add_documents([mkdoc(k, v) for k, v in MANY.items()])
    assert r.repaired and not cur.exists()
    assert {d.doc_id for d in reopen(cfg).documents()} == set(MANY)
    assert cur.name not in read_history(kb.path)[0]


# ------------------------------------------------------------------ the particular cases of the finding


def test_half_chunks_jsonl_is_detected_at_open_not_at_a_hit(cfg, monkeypatch):
    kb = api_kb(cfg)
    v = kb.version.path
    damage(v / "chunks.jsonl", "half")
    with pytest.raises(IndexDamaged, match="chunks.jsonl") as ei:
        IndexVersion(v)
    assert ei.value.file == "chunks.jsonl"
    # the same when the file is too large to be hashed on open (sizes only) ...
    monkeypatch.setattr(verify_mod, "HASH_ON_OPEN_MAX", 0)
    with pytest.raises(IndexDamaged, match="chunks.jsonl"):
        IndexVersion(v)
    # ... and for a version built before checksums existed (structure checks only)
    manifest = json.loads((v / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"]
    (v / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (v / COMPLETE).write_text(manifest["corpus_hash"] + "\n", encoding="utf-8")
    with pytest.raises(IndexDamaged, match="chunks.jsonl"):
        IndexVersion(v)


def test_legacy_version_without_checksums_still_opens(cfg):
    kb = api_kb(cfg)
    v = kb.version.path
    manifest = json.loads((v / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"]
    (v / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (v / COMPLETE).write_text(manifest["corpus_hash"] + "\n", encoding="utf-8")
    fresh = reopen(cfg)
    assert fresh.version.path == v and not fresh.damage
    r = fresh.add_documents([mkdoc("new", "新文档：上海举办进博会。")])
    assert r.added == ["new"] and "files" in fresh.manifest  # the next build is sealed


def test_altered_large_file_is_found_by_check_and_by_incremental_index(cfg, docs, capsys, monkeypatch):
    assert cli(capsys, "index", str(docs), "--kb", "r", "--json")[0] == 0
    v = current_version_path(cfg.paths.kb_dir("r"))
    damage(v / "vectors.faiss", "flip")  # same size, other bytes
    # deliberate compromise: a file above HASH_ON_OPEN_MAX is only size-checked on open ...
    monkeypatch.setattr(verify_mod, "HASH_ON_OPEN_MAX", 0)
    assert KnowledgeBase.open("r", cfg).version.path == v
    # ... but `rag kb check` hashes everything, and so does `rag index` before building on it
    rc, out, err = cli(capsys, "kb", "check", "--kb", "r")
    assert rc == 1 and "vectors.faiss" in out and "checksum" in out
    rc, out, err = cli(capsys, "index", str(docs), "--kb", "r", "--json")
    assert rc == 0 and any("vectors.faiss" in line for line in json.loads(out)["repaired"])
    assert cli(capsys, "kb", "check", "--kb", "r")[0] == 0


def test_current_stays_bounded_after_many_builds(cfg):
    kb = api_kb(cfg, docs_={"a": "第一段。"})
    for i in range(12):
        kb.add_documents([mkdoc(f"n{i}", f"第{i}篇新文档：城市{i}。")])
    lines = (kb.path / CURRENT).read_text(encoding="utf-8").splitlines()
    assert len(lines) <= KEEP_VERSIONS
    names, problem = read_history(kb.path)
    assert problem is None and names[0] == kb.version.path.name
    assert all((kb.path / n / COMPLETE).exists() for n in names)
    versions = sorted(p.name for p in kb.path.iterdir() if p.is_dir())
    assert versions == sorted(names) and len(versions) <= KEEP_VERSIONS
    assert len(reopen(cfg).documents()) == 13


@pytest.mark.parametrize("how", ["half", "zero", "missing-folder"])
def test_damaged_current_file_falls_back_to_versions_on_disk(cfg, capsys, how):
    kb = api_kb(cfg, builds=2)
    newest = kb.version.path
    if how == "missing-folder":
        (kb.path / CURRENT).write_text("v-gone\nprevious v-gone-too\n", encoding="utf-8")
    else:
        damage(kb.path / CURRENT, how)
    fresh = reopen(cfg)
    assert fresh.version.path == newest and fresh.damage and fresh.damage[0].file == CURRENT
    rc, out, err = cli(capsys, "kb", "check", "--kb", "t")
    assert rc == 1 and "CURRENT" in out
    rc, out, err = cli(capsys, "kb", "repair", "--kb", "t")
    assert rc == 0, err
    assert current_version_path(kb.path) == newest
    assert cli(capsys, "kb", "check", "--kb", "t")[0] == 0


# ------------------------------------------------------------------ crashes and the vector cache


@pytest.mark.parametrize("where", ["chunking", "seal", "publish"])
def test_crash_mid_build_leaves_previous_version_intact(cfg, monkeypatch, where):
    kb = api_kb(cfg)
    old = kb.version.path
    n_docs = len(kb.documents())

    def boom(*a, **k):
        raise RuntimeError(f"crash in {where}")

    if where == "chunking":
        kb.chunk_fn = boom
    elif where == "seal":
        real_seal = verify_mod.seal

        def half_seal(folder, manifest):  # the manifest is written, COMPLETE never is
            real_seal(folder, manifest)
            (folder / COMPLETE).unlink()
            boom()

        monkeypatch.setattr(index_mod, "seal", half_seal)
    else:
        monkeypatch.setattr(index_mod, "_publish", boom)
    with pytest.raises(RuntimeError):
        kb.add_documents([mkdoc("x", "崩溃前的新文档。")])
    monkeypatch.undo()
    kb.chunk_fn = para_chunker
    assert current_version_path(kb.path) == old
    fresh = reopen(cfg)
    assert fresh.version.path == old and not fresh.damage and len(fresh.documents()) == n_docs
    assert fresh.search("城市3举办第3届文化节", k=1)[0].chunk.doc_id == "d03"
    assert not any(p.name.startswith(".tmp-") for p in kb.path.iterdir())
    # and the next build works
    assert fresh.add_documents([mkdoc("x", "崩溃后的新文档。")]).added == ["x"]


def test_crash_during_rebuild_of_damaged_kb_then_rebuild_succeeds(cfg, docs, capsys, monkeypatch):
    assert cli(capsys, "index", str(docs), "--kb", "r", "--json")[0] == 0
    v = current_version_path(cfg.paths.kb_dir("r"))
    damage(v / "vectors.faiss", "half")
    monkeypatch.setattr(index_mod, "seal", lambda folder, manifest: (_ for _ in ()).throw(OSError(28, "No space left")))
    rc, _, err = cli(capsys, "index", str(docs), "--kb", "r", "--rebuild")
    assert rc == 1 and err.strip().splitlines()[-1] == "rag index: No space left" and "Traceback" not in err
    monkeypatch.undo()
    assert current_version_path(cfg.paths.kb_dir("r")) == v  # nothing published
    assert cli(capsys, "index", str(docs), "--kb", "r", "--rebuild", "--json")[0] == 0
    assert search_top(capsys, "r", "冰雪大世界占地多少") == "harbin"


@pytest.mark.parametrize("how", ["half", "header"])
def test_damaged_vector_cache_does_not_stop_a_rebuild(cfg, docs, capsys, how):
    assert cli(capsys, "index", str(docs), "--kb", "r", "--json")[0] == 0
    # not the -shm file: SQLite memory-maps it, and cutting it under a connection this process still
    # holds is a SIGBUS no check can prevent (a new `rag index` process rebuilds it from the WAL)
    caches = [p for p in (Path(cfg.paths.home) / "cache").rglob("*") if p.is_file() and not p.name.endswith("-shm")]
    assert caches, "the vector cache should exist after a build"
    for p in caches:
        if how == "half":
            damage(p, "half")
        else:  # SQLite's header cut: "file is not a database"
            p.write_bytes(p.read_bytes()[:100])
    damage(current_version_path(cfg.paths.kb_dir("r")) / "chunks.jsonl", "zero")
    rc, out, err = cli(capsys, "index", str(docs), "--kb", "r", "--rebuild", "--json")
    assert rc == 0, err
    assert search_top(capsys, "r", "冰雪大世界占地多少") == "harbin"
    if how == "header":  # set aside and replaced by a working cache: the next build embeds nothing
        cache_dir = Path(cfg.paths.home) / "cache" / "vectors"
        assert list(cache_dir.glob("vectors.sqlite.damaged-*"))
        rc, out, err = cli(capsys, "index", str(docs), "--kb", "r", "--rebuild", "--json")
        assert rc == 0 and json.loads(out)["embedded"] == 0


# ------------------------------------------------------------------ rag kb check / repair


def test_kb_check_and_repair(cfg, docs, capsys):
    kb = api_kb(cfg, builds=2)
    rc, out, err = cli(capsys, "kb", "check", "--kb", "t")
    assert rc == 0 and out.count(": ok,") == 2 and "damaged" not in out
    cur = kb.version.path
    damage(cur / "bm25_tokens.npy", "half")
    rc, out, err = cli(capsys, "kb", "check", "--kb", "t")
    damaged = [ln for ln in out.splitlines() if ln.startswith("damaged:")]
    assert rc == 1 and len(damaged) == 1 and "bm25_tokens.npy" in damaged[0] and "current" in damaged[0]
    # repair without PATH: the newest undamaged version becomes current; the damaged one is removed
    rc, out, err = cli(capsys, "kb", "repair", "--kb", "t")
    assert rc == 0, err
    assert not cur.exists() and cli(capsys, "kb", "check", "--kb", "t")[0] == 0
    assert reopen(cfg).search("城市1举办第1届文化节", k=1)[0].chunk.doc_id == "d01"
    # nothing left undamaged: repair says to give the documents, in one line; with PATH it rebuilds
    for p in [p for p in kb.path.iterdir() if p.is_dir()]:
        damage(p / "chunks.offsets.npy", "zero")
    rc, out, err = cli(capsys, "kb", "repair", "--kb", "t")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "rag kb repair PATH" in err
    rc, out, err = cli(capsys, "kb", "repair", str(docs), "--kb", "t")
    assert rc == 0, err
    assert search_top(capsys, "t", "冰雪大世界占地多少") == "harbin"


def test_kb_check_of_missing_kb_is_one_line(cfg, capsys):
    rc, out, err = cli(capsys, "kb", "check", "--kb", "nothere")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_open_without_create_raises_named_error_subclassing_index_missing(cfg):
    kb = api_kb(cfg)
    damage(kb.version.path / "manifest.json", "half")
    with pytest.raises(IndexMissing, match="manifest.json"):  # IndexDamaged is an IndexMissing (API: 404)
        KnowledgeBase.open("t", cfg, encoder=CountingEncoder())
