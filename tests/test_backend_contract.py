"""One contract for every index backend behind `KnowledgeBase`: local (FAISS + bm25s), Milvus
Lite embedded (a data folder in tmp), and Milvus Lite served over http://127.0.0.1:<free port>
by `milvus-lite server`, started and stopped by the fixture. Create, add, change, delete, search
dense / BM25 / hybrid, traditional↔simplified, the documents' stored texts, a failed build keeps the previous content, model
mismatch, reopen after the indexing process ended, two reader processes while a third indexes.
FakeEncoder ("fake-64") for speed; one slow test with the real encoder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from embeddings import FakeEncoder
from rag.config import load_config
from rag.errors import IndexMissing, ModelMismatch
from rag.index.kb import KnowledgeBase, list_kbs
from rag.types import Document
from _servers import free_port, running, wait_port  # tests/ is on sys.path (as _answer_kb)
from test_kb import para_chunker  # one chunk per paragraph (rootdir-relative import, as _answer_kb)

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["local", "milvus-lite", "milvus-served"]

DOCS = {
    "a": "安達市委組織部紮實推進學習型黨組織建設。\n\n開展創先爭優活動，黨員帶頭。\n\n第三段：基層組織建設年。",
    "b": "哈尔滨市举办冰雪节，吸引了大量游客。\n\n冰雪大世界占地六十万平方米。",
    "c": "苹果公司发布 iPhone 15，售价 5999 元。",
}


def _milvus_lite_cmd() -> list[str]:
    exe = shutil.which("milvus-lite")
    return [exe] if exe else [sys.executable, "-m", "milvus_lite"]


@pytest.fixture(scope="module")
def lite_server(tmp_path_factory):
    """`milvus-lite server --data-dir DIR --host 127.0.0.1 --port N`, stopped at the end."""
    pytest.importorskip("milvus_lite")
    port = free_port()
    data = tmp_path_factory.mktemp("milvus-served")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = data.parent / f"server-{port}.log"
    with running([*_milvus_lite_cmd(), "server", "--data-dir", str(data / "db"), "--host", "127.0.0.1",
                  "--port", str(port)], log, env=env, grace=20) as proc:
        wait_port(port, proc, log, timeout=60, what="milvus-lite server")
        yield f"http://127.0.0.1:{port}"


def _settings(backend: str, request) -> dict[str, str]:
    """The backend as RAG_* variables (also what subprocesses get)."""
    if backend == "local":
        return {"RAG_INDEX_BACKEND": "local"}
    env = {"RAG_INDEX_BACKEND": "milvus"}
    if backend == "milvus-served":
        env["RAG_INDEX_MILVUS_URI"] = request.getfixturevalue("lite_server")
        env["RAG_INDEX_MILVUS_COLLECTION"] = f"t_{uuid.uuid4().hex[:10]}"  # one server for the module
    return env


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path, monkeypatch):
    name = request.param
    env = {"RAG_HOME": str(tmp_path / "home"), "RAG_EMBED_MODEL": "fake-64", **_settings(name, request)}
    for k in ("RAG_INDEX_MILVUS_URI", "RAG_INDEX_MILVUS_COLLECTION", "RAG_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield name, env
    if name != "local":
        from rag.index.milvus.schema import close_clients

        close_clients()  # releases the embedded data folder for the next test / process


def cfg_of():
    return load_config()


def mkdoc(doc_id: str, text: str) -> Document:
    return Document(doc_id, f"{doc_id}.txt", doc_id, text, text, list(range(len(text))), {"date": "2024-01-01"})


class Counting(FakeEncoder):
    def __init__(self):
        super().__init__(64)  # named "fake-64", like load_encoder("fake-64") in subprocesses
        self.passages: list[str] = []

    def encode_passages(self, texts, show_progress=False):
        self.passages.extend(texts)
        return super().encode_passages(texts)


def open_kb(enc=None, create=True, name="t"):
    kb = KnowledgeBase.open(name, cfg_of(), encoder=enc or Counting(), create=create)
    kb.chunk_fn = para_chunker
    return kb


def ids(hits):
    return [h.chunk.chunk_id for h in hits]


def test_dispatch_and_empty(backend):
    name, _ = backend
    with pytest.raises(IndexMissing):
        KnowledgeBase.open("nothere", cfg_of())
    kb = open_kb()
    assert type(kb).__name__ == ("KnowledgeBase" if name == "local" else "MilvusKnowledgeBase")
    assert len(kb) == 0 and kb.search("冰雪节") == [] and kb.documents() == []


def test_add_search_change_delete(backend):
    enc = Counting()
    kb = open_kb(enc)
    r = kb.add_documents([mkdoc(k, v) for k, v in DOCS.items()])
    assert sorted(r.added) == ["a", "b", "c"] and r.n_chunks == len(kb) == 6 and r.embedded == 6
    assert "t" in list_kbs(cfg_of())
    # BM25 finds the traditional passage for a simplified question (and the other way round)
    assert ids(kb.search("创先争优活动", k=3, mode="bm25"))[0] == "a#1"
    assert ids(kb.search("冰雪節遊客", k=3, mode="bm25"))[0] == "b#0"
    assert ids(kb.search("iPhone 15 售价", k=2, mode="bm25"))[0] == "c#0"
    from rag.apps.cli import main as cli

    assert cli(["kb", "check", "--kb", "t"]) == 0  # either backend: every row verified
    for mode in ("dense", "hybrid"):
        hits = kb.search("开展创先争优活动，党员带头。", k=3, mode=mode)  # FakeEncoder folds scripts too
        assert hits[0].chunk.chunk_id == "a#1", mode
        assert hits[0].chunk.text == "開展創先爭優活動，黨員帶頭。" and hits[0].chunk.start == 22
        assert [h.rank for h in hits] == [1, 2, 3]
    h = kb.search("创先争优活动", k=3, mode="hybrid")[0]
    assert set(h.scores) == {"dense", "bm25"} and h.ranks.get("bm25") == 1 and h.scores["bm25"] > 0
    assert kb.get_chunk("a#1").text.startswith("開展") and [c.chunk_id for c in kb.neighbours("a#1")] == ["a#0", "a#1", "a#2"]
    # change one document: only its new paragraph is embedded
    n_before = len(enc.passages)
    r = kb.add_documents([mkdoc("b", "哈尔滨市举办冰雪节，吸引了大量游客。\n\n松花江畔新建了滑雪场。")])
    assert r.updated == ["b"] and r.embedded == 1 and len(enc.passages) == n_before + 1
    assert ids(kb.search("滑雪场", k=1, mode="bm25")) == ["b#1"]
    assert "b#1" not in ids(kb.search("六十万平方米", k=3, mode="bm25"))
    r = kb.add_documents([mkdoc(k, v) for k, v in DOCS.items() if k != "b"])
    assert not r.changed and sorted(r.unchanged) == ["a", "c"]
    # delete
    r = kb.delete_document("c")
    assert r.removed == ["c"] and len(kb) == 5 and kb.get_chunk("c#0") is None
    assert "c#0" not in ids(kb.search("iPhone 15 售价", k=5, mode="hybrid"))
    assert sorted(d.doc_id for d in kb.documents()) == ["a", "b"]
    assert kb.manifest["embedding"]["model"] == "fake-64" and kb.manifest["corpus_hash"]


def test_document_texts_are_stored_with_each_version(backend):
    """`kb.document_text` (exact quotes) on either backend: stored at the first build, kept for an
    unchanged document, replaced for a changed one, gone with a deleted one, there after a reopen."""
    kb = open_kb()
    kb.add_documents([mkdoc(k, v) for k, v in DOCS.items()])
    assert {k: kb.document_text(k) for k in DOCS} == DOCS and kb.document_text("zz") is None
    kb.add_documents([mkdoc("b", DOCS["b"] + "\n\n松花江畔新建了滑雪场。")])
    kb.delete_document("c")
    assert kb.document_text("a") == DOCS["a"] and kb.document_text("b").endswith("滑雪场。")
    assert kb.document_text("c") is None
    assert open_kb(create=False).document_text("a") == DOCS["a"]
    # a text larger than one stored part (Milvus keeps it in 60k-character parts)
    import random

    rng = random.Random(7)
    big = "\n\n".join("".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(1500)) for _ in range(60))
    kb.add_documents([mkdoc("big", big)])
    assert kb.document_text("big") == big and kb.document_text("a") == DOCS["a"]


def test_failed_build_keeps_previous_content(backend):
    kb = open_kb()
    kb.add_documents([mkdoc("a", DOCS["a"])])

    class Broken(Counting):
        def encode_passages(self, texts, show_progress=False):
            raise RuntimeError("encoder died")

    kb2 = open_kb(Broken())
    with pytest.raises(RuntimeError, match="encoder died"):
        kb2.add_documents([mkdoc("b", DOCS["b"])])
    assert ids(open_kb().search("创先争优", k=1, mode="bm25")) == ["a#1"] and len(open_kb()) == 3


def test_milvus_write_interrupted_after_insert(backend, monkeypatch):
    """Rows inserted, then the build dies before the alias moves: readers keep the old version,
    and the half-written collections are gone."""
    if backend[0] == "local":
        pytest.skip("the local backend's own interruption tests are in tests/test_index.py")
    import rag.index.milvus.store as ms

    kb = open_kb()
    kb.add_documents([mkdoc("a", DOCS["a"])])
    before = set(kb.client.list_collections())
    monkeypatch.setattr(ms, "create_meta_collection", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        kb.add_documents([mkdoc("b", DOCS["b"])])
    assert set(kb.client.list_collections()) == before
    kb3 = open_kb()
    assert len(kb3) == 3 and ids(kb3.search("冰雪节", k=3, mode="bm25")) == []


def test_migrate_a_local_kb_without_re_embedding(backend, monkeypatch):
    """`rag index --backend milvus` on a KB with a local index copies it: nothing is embedded and
    the three modes rank alike."""
    if backend[0] == "local":
        pytest.skip("migration goes from the local backend to Milvus")
    monkeypatch.setenv("RAG_INDEX_BACKEND", "local")
    docs = [mkdoc(k, v) for k, v in DOCS.items()]
    local = open_kb()
    local.add_documents(docs)
    qs = ["创先争优活动", "冰雪節遊客", "iPhone 售价"]
    want = {(q, m): ids(local.search(q, k=4, mode=m)) for q in qs for m in ("dense", "bm25", "hybrid")}
    monkeypatch.setenv("RAG_INDEX_BACKEND", "milvus")
    enc = Counting()
    mkb = open_kb(enc)
    assert len(mkb) == 0
    r = mkb.add_documents(docs)
    assert r.embedded == 0 and enc.passages == [] and r.reused_vectors == 6 and not r.changed and len(mkb) == 6
    assert {(q, m): ids(mkb.search(q, k=4, mode=m)) for q, m in want} == want
    # the same BM25: Milvus's scores are bm25s's (Lucene variant) times k1 + 1 = 2.2, exactly
    for q in qs:
        lo, mi = local.search(q, k=4, mode="bm25"), mkb.search(q, k=4, mode="bm25")
        assert [round(m.scores["bm25"] / l.scores["bm25"], 4) for l, m in zip(lo, mi)] == [2.2] * len(lo)
    assert mkb.manifest["migrated_from"] == local.version.path.name
    assert {k: mkb.document_text(k) for k in DOCS} == DOCS  # the stored texts are copied too


def test_model_mismatch(backend):
    open_kb().add_documents([mkdoc("a", DOCS["a"])])
    with pytest.raises(ModelMismatch, match="fake-64"):
        KnowledgeBase.open("t", cfg_of(), encoder=FakeEncoder(32))


def _py(code: str, env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    full = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.mark.slow  # subprocesses: a fresh interpreter imports the stack (~10 s each here)
def test_reopen_after_the_indexing_process_ended(backend, tmp_path):
    _, env = backend
    src = tmp_path / "src"
    src.mkdir()
    for k, v in DOCS.items():
        (src / f"{k}.txt").write_text(v, encoding="utf-8")
    p = subprocess.run([sys.executable, "-m", "rag", "index", str(src), "--kb", "t", "--json"],
                       env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                       timeout=240, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    rep = json.loads(p.stdout)
    assert sorted(rep["added"]) == ["a", "b", "c"]
    kb = KnowledgeBase.open("t", cfg_of(), encoder=FakeEncoder(64))
    assert len(kb) == rep["n_chunks"]
    assert kb.search("创先争优活动", k=1, mode="bm25")[0].chunk.doc_id == "a"
    assert kb.search("冰雪大世界", k=1, mode="hybrid")[0].chunk.doc_id == "b"


@pytest.mark.slow
def test_second_process_on_an_embedded_lite_folder_gets_one_clear_line(backend):
    name, env = backend
    if name != "milvus-lite":
        pytest.skip("only an embedded Milvus Lite folder is one process at a time")
    open_kb().add_documents([mkdoc("a", DOCS["a"])])  # this process now holds the folder
    p = subprocess.run([sys.executable, "-m", "rag", "search", "创先争优", "--kb", "t"],
                       env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                       timeout=240, cwd=ROOT)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert "milvus-lite server" in p.stderr and "index.milvus_uri" in p.stderr, p.stderr[-1000:]


READER = """
import json, sys, time
from embeddings import FakeEncoder
from rag.config import load_config
from rag.index.kb import KnowledgeBase
kb = KnowledgeBase.open("t", load_config(), encoder=FakeEncoder(64))
seen, errors, t_end = set(), [], time.monotonic() + float(sys.argv[1])
print("ready", flush=True)
while time.monotonic() < t_end:
    try:
        hits = kb.search("创先争优活动", k=2, mode="hybrid")
        assert hits and hits[0].chunk.doc_id == "a", [h.chunk.chunk_id for h in hits]
        if kb.search("松花江滑雪场", k=1, mode="bm25"):
            seen.add("new")
            break
    except Exception as e:
        errors.append(f"{type(e).__name__}: {e}")
        break
    time.sleep(0.05)
print(json.dumps({"seen": sorted(seen), "errors": errors}))
"""


@pytest.mark.slow
def test_two_readers_while_a_third_process_indexes(backend, tmp_path):
    """Chat and API are two processes reading one KB while `rag index` updates it: they never
    fail and both pick up the new version."""
    name, env = backend
    if name == "milvus-lite":
        pytest.skip("an embedded Milvus Lite folder is one process only (DataDirLockedError): use the served one")
    kb = open_kb()
    kb.add_documents([mkdoc(k, v) for k, v in DOCS.items()])
    full = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    readers = [subprocess.Popen([sys.executable, "-c", READER, "90"], env=full, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(2)]
    for r in readers:
        assert r.stdout.readline().strip() == "ready", r.stderr.read()[-2000:]
    src = tmp_path / "src"
    src.mkdir()
    (src / "b.txt").write_text("哈尔滨市举办冰雪节。\n\n松花江畔新建了滑雪场。", encoding="utf-8")
    p = subprocess.run([sys.executable, "-m", "rag", "index", str(src), "--kb", "t", "--json"], env=full,
                       capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    outs = [json.loads(r.communicate(timeout=150)[0].strip().splitlines()[-1]) for r in readers]
    for o in outs:
        assert o["errors"] == [] and o["seen"] == ["new"], o


@pytest.mark.slow
def test_real_encoder_milvus_matches_local(tmp_path, monkeypatch):
    """The real embedding model, the real chunker, the seed corpus: Milvus Lite migrated from the
    local index gives the same top-5 as the local backend for a few questions."""
    monkeypatch.setenv("RAG_MODELS_DIR", load_config().paths.models_dir)  # the installed models
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    cfg = load_config()
    local = KnowledgeBase.open("s", cfg, create=True)
    seeds = sorted(Path(cfg.paths.seeds_dir).glob("*.txt"))[:12]
    local.add_paths(seeds, progress=False)
    qs = [local.chunks[i].text[:30] for i in range(0, len(local), max(1, len(local) // 6))]
    mcfg = cfg.replace(index={"backend": "milvus"})
    mkb = KnowledgeBase.open("s", mcfg, create=True)
    rep = mkb.add_paths(seeds, progress=False)
    assert rep.embedded == 0 and rep.reused_vectors == len(local) and len(mkb) == len(local)
    try:
        for q in qs:
            for mode in ("dense", "bm25", "hybrid"):
                assert ids(mkb.search(q, k=5, mode=mode)) == ids(local.search(q, k=5, mode=mode)), (q, mode)
    finally:
        from rag.index.milvus.schema import close_clients

        close_clients()
