"""ui.feedback: SQLite ratings (upsert per answer, comments, retraction) and export as an eval set."""

from __future__ import annotations

import threading
import zipfile

import pytest

from rag.evaluate.evalsets import load_beir, read_jsonl
from rag.types import Answer, Chunk, Citation, Hit
from ui.feedback import FeedbackStore, export_evalset, export_zip


def _chunk(doc: str, text: str) -> Chunk:
    return Chunk(f"{doc}#0", doc, 0, f"{doc}标题", ("一、",), text, 0, len(text), f"{doc}.txt", {"date": "2010-11-26"})


def _cite(n: int, c: Chunk, quote: str, supported: bool = True) -> Citation:
    i = c.text.index(quote)
    return Citation(n, c.chunk_id, c.doc_id, c.title, c.section, c.source, c.start, c.end, quote, i, i + len(quote),
                    0.9 if supported else 0.1, supported)


CA = _chunk("docA", "安达市委实施了六学措施。关键在县一级。")
CB = _chunk("docB", "另一份文件的段落。")


def answered() -> Answer:
    return Answer(
        question="关键在哪一级？",
        text="关键在县一级【1】，另见【2】。",
        citations=(_cite(1, CA, "关键在县一级。"), _cite(2, CB, "另一份文件的段落。", supported=False)),
        refused=False,
        hits=(Hit(CA, 0.9, 1), Hit(CB, 0.5, 2)),
        timings={"total": 1.0},
        model="local:qwen2.5-1.5b",
        standalone_question="安达市创先争优关键在哪一级？",
    )


def refused() -> Answer:
    return Answer("月球上有几座城市？", "根据所给资料无法回答。", (), True, (Hit(CB, 0.1, 1),), {}, "local:qwen2.5-1.5b")


@pytest.fixture
def store(tmp_path):
    return FeedbackStore(tmp_path / "fb" / "feedback.sqlite3")


def test_record_upserts_per_answer_and_keeps_comment(store):
    fid = store.record(session="s1", turn=0, question="q", answer=answered(), rating=1, kb="seeds",
                       config={"kb": "seeds", "k": 5, "mode": "hybrid"})
    store.set_comment(fid, "  回答准确  ")
    # changing the vote on the same answer updates the same row and keeps the comment
    fid2 = store.record(session="s1", turn=0, question="q", answer=answered(), rating=-1, kb="seeds")
    assert fid2 == fid
    row = store.get(fid)
    assert row["rating"] == -1 and row["comment"] == "回答准确"
    assert row["citations"][0]["quote"] == "关键在县一级。"
    assert row["answer_json"]["standalone_question"] == "安达市创先争优关键在哪一级？"
    # another session's answer at the same turn is its own row
    other = store.record(session="s2", turn=0, question="q", answer=answered(), rating=1)
    assert other != fid
    assert store.counts() == {"up": 1, "down": 1}


def test_retracted_votes_are_not_listed(store):
    store.record(session="s", turn=0, question="q", answer=answered(), rating=1)
    store.record(session="s", turn=0, question="q", answer=answered(), rating=0)
    assert store.rows() == []
    assert len(store.rows(include_retracted=True)) == 1
    with pytest.raises(ValueError):
        store.record(session="s", turn=1, question="q", answer=answered(), rating=2)
    with pytest.raises(KeyError):
        store.set_comment(999, "x")


def test_concurrent_sessions_all_stored(store):
    # Gradio handlers run on a thread pool: 8 sessions rating at once must all land
    def vote(i: int) -> None:
        store.record(session=f"s{i}", turn=0, question=f"q{i}", answer=answered(), rating=1 if i % 2 else -1)

    threads = [threading.Thread(target=vote, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.counts() == {"up": 4, "down": 4}


def test_export_as_evaluation_set(store, tmp_path):
    up = store.record(session="s", turn=0, question="关键在哪一级？", answer=answered(), rating=1, kb="seeds",
                      config={"kb": "seeds", "backend": "local", "k": 5})
    store.record(session="s", turn=1, question="月球上有几座城市？", answer=refused(), rating=1, kb="seeds")
    down = store.record(session="s", turn=2, question="关键在哪一级？", answer=answered(), rating=-1, kb="seeds",
                        comment="应该是市一级")
    store.record(session="x", turn=0, question="其他库", answer=answered(), rating=1, kb="other")

    out = export_evalset(store, tmp_path / "fb-set", kb="seeds")
    es = load_beir(out)
    assert sorted(es.queries) == sorted([f"fb-{up}", f"fb-{up + 1}", f"fb-{down}"])
    assert es.queries[f"fb-{up}"]["metadata"]["settings"]["backend"] == "local"
    # 👍 answered: the answer without markers; only the supported citation is evidence/relevant
    a = es.answers[f"fb-{up}"]
    assert a["answers"] == ["关键在县一级，另见。"] and a["answerable"] is True and a["needs_review"] is False
    assert a["evidence"] == [{"doc_id": "docA", "quote": "关键在县一级。", "start": 12}]
    assert es.qrels == {f"fb-{up}": {"docA": 1}}
    assert es.corpus["docA"]["text"] == CA.text and es.corpus["docA"]["metadata"]["partial"] is True
    # 👍 on a refusal: confirmed unanswerable
    r = es.answers[f"fb-{up + 1}"]
    assert r["answerable"] is False and r["answers"] == []
    # 👎: kept for review with the rejected answer and the comment
    d = es.answers[f"fb-{down}"]
    assert d["needs_review"] is True and d["answers"] == [] and d["comment"] == "应该是市一级"
    assert d["rejected_answer"].startswith("关键在县一级")


def test_export_zip(store, tmp_path):
    store.record(session="s", turn=0, question="q", answer=answered(), rating=1, kb="seeds")
    z = export_zip(store, tmp_path / "out" / "fb.zip")
    names = set(zipfile.ZipFile(z).namelist())
    assert {"fb/queries.jsonl", "fb/answers.jsonl", "fb/corpus.jsonl", "fb/qrels/test.tsv"} <= names
    assert len(list(read_jsonl(tmp_path / "out" / "fb" / "queries.jsonl"))) == 1
