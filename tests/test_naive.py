"""The naive LangChain baseline (rag.evaluate.naive) with a fake encoder and the fake chat model:
real spans on its hits, the assistant's event stream, no citations, refusal from the text, the
store cache, and its configuration through the harness and the CLI spec parser."""

from __future__ import annotations

import argparse

import pytest

from embeddings.base import FakeEncoder
from rag.evaluate import naive as N
from rag.llm.backends import FakeChatModel
from rag.types import Evidence, Final, Status, Token

# three documents, one longer than a chunk so it is split (500 characters, overlap 50)
LONG = "".join(f"第{i}段：红星农业合作社在第{i}年种植水稻{i * 10}亩，社员增加到{i + 300}户。\n" for i in range(1, 40))
TEXTS = {
    "d_city": "哈尔滨冰雪节\n\n哈尔滨国际冰雪节创办于1985年，每年一月五日开幕。冰雪节期间举办冰灯游园会。",
    "d_farm": LONG,
    "d_party": "市委要求各级党组织做到“五个好”：领导班子好、党员队伍好、工作机制好、工作业绩好、群众反映好。",
}


@pytest.fixture(scope="module")
def store():
    return N.NaiveStore.build(TEXTS, FakeEncoder())


def test_split_spans_index_the_full_text(store):
    assert len(LONG) > 1000 and sum(c.doc_id == "d_farm" for c in store.chunks) >= 3
    for c in store.chunks:
        assert TEXTS[c.doc_id][c.start:c.end] == c.text  # a real span into the document text
        assert len(c.text) <= N.CHUNK_SIZE and c.chunk_id == f"{c.doc_id}#lc{c.n}"
    farm = [c for c in store.chunks if c.doc_id == "d_farm"]
    # consecutive chunks overlap (chunk_overlap=50) and together cover the document
    assert all(b.start < a.end for a, b in zip(farm, farm[1:]))
    assert farm[0].start == 0 and farm[-1].end == len(LONG.rstrip())


def test_ask_streams_the_assistant_events_with_hits_and_no_citations(store):
    model = FakeChatModel(responses=["哈尔滨国际冰雪节创办于1985年。"], chunk_size=3)
    events = list(N.NaiveRAG(store, model=model).ask("哈尔滨国际冰雪节创办于哪一年？", [("上一问", "上一答")],
                                                       llm_backend="naive:fake", k=9, mode="bm25"))
    kinds = [type(e) for e in events]
    assert kinds[0] is Status and Evidence in kinds and Token in kinds and kinds[-1] is Final
    ev = next(e for e in events if isinstance(e, Evidence))
    ans = events[-1].answer
    assert len(ev.hits) == N.K == len(ans.hits) and ans.hits == ev.hits  # top 4, whatever k and mode say
    top = ans.hits[0]
    assert top.chunk.doc_id == "d_city" and top.rank == 1
    assert TEXTS["d_city"][top.chunk.start:top.chunk.end] == top.chunk.text
    assert "".join(e.text for e in events if isinstance(e, Token)) == ans.text == "哈尔滨国际冰雪节创办于1985年。"
    assert ans.citations == () and not ans.refused and not ans.grounded
    assert ans.standalone_question == ans.question  # no condensation: history is ignored
    assert ans.model.startswith("naive+") and {"retrieve", "first_token", "total"} <= set(ans.timings)
    # one "stuff" prompt: system = instructions + the 4 chunks joined by blank lines; human = the question
    (system, human), = model.calls
    assert "\n\n".join(h.chunk.text for h in ans.hits) in system.content and "无法回答" in system.content
    assert human.content == "哈尔滨国际冰雪节创办于哪一年？"


def test_refusal_text_marks_refused(store):
    ans = N.NaiveRAG(store, model=FakeChatModel(responses=["无法回答。"])).ask("冰雪节的门票价格是多少？")
    final = [e for e in ans if isinstance(e, Final)][0].answer
    assert final.refused and final.citations == () and final.text == "无法回答。"
    # a plain answer is not a refusal (rag.answer.assistant.is_refusal decides, as for the assistant's model)
    ok = [e for e in N.NaiveRAG(store, model=FakeChatModel(responses=["创办于1985年。"])).ask("何时创办？") if isinstance(e, Final)]
    assert ok[0].answer.refused is False


def test_model_failure_is_a_rag_error(store):
    from rag.errors import RagError

    def boom(messages):
        raise RuntimeError("crash")

    with pytest.raises(RagError, match="crash"):
        list(N.NaiveRAG(store, model=FakeChatModel(responses=boom)).ask("问题？"))
    with pytest.raises(RagError, match="chat model"):
        list(N.NaiveRAG(store, get_model=lambda b: None).ask("问题？", llm_backend="naive:extractive"))


def test_store_cache_round_trip(tmp_path):
    a = N.NaiveStore.build(TEXTS, FakeEncoder(), cache_dir=tmp_path)
    assert a.path is not None and (a.path / "vectors.npy").exists() and (a.path / "chunks.json").exists()
    b = N.NaiveStore.build(TEXTS, FakeEncoder(), cache_dir=tmp_path)  # loaded, not rebuilt
    assert b.path == a.path and b.chunks == a.chunks
    q = "红星农业合作社第12年种植水稻多少亩？"
    assert [h.chunk.chunk_id for h in a.search(q)] == [h.chunk.chunk_id for h in b.search(q)]
    # other texts → another cache entry
    c = N.NaiveStore.build({**TEXTS, "d_new": "新文档。"}, FakeEncoder(), cache_dir=tmp_path)
    assert c.path != a.path


def test_specs_and_configs():
    from rag.apps.commands.eval import _llm_spec
    from rag.config import load_config
    from rag.evaluate import harness as H

    assert _llm_spec("naive:Local:qwen2.5-1.5b") == "naive:local:qwen2.5-1.5b" and _llm_spec("local") == "local"
    for bad in ("naive:extractive", "naive:nope"):
        with pytest.raises(argparse.ArgumentTypeError):
            _llm_spec(bad)
    cfg = load_config(env={})
    cs = H.make_configs(cfg, llm="extractive", mode=None, k=None, retrieval_only=False,
                        compare=["llm=extractive,naive:fake", "k=3,5"])
    # the naive recipe fixes FAISS top 4: the k axis collapses to one naive configuration
    assert [c.name for c in cs] == ["extractive/hybrid/k3", "extractive/hybrid/k5", "naive:fake/dense/k4"]
    with pytest.raises(H.EvalError):
        H.make_configs(cfg, llm="naive:extractive", mode=None, k=None, retrieval_only=False, compare=None)
