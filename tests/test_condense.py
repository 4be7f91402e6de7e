"""rag.answer.condense: follow-up condensing (heuristic, model with check) and cross-lingual queries.

Fixtures are hand-made (invented names), not taken from the evaluation sets, which
benchmarks/condense.py uses as the measurement.
"""

from __future__ import annotations

import json

import pytest

from rag.answer.condense import check_rewrite, condense
from rag.answer.followup import Condensed, condense_heuristic, needs_context
from rag.answer.translate import QueryCache, to_chinese_query
from rag.llm.backends import FakeChatModel
from rag.text.norm import detect_script


def h(*questions: str) -> list[tuple[str, str]]:
    return [(q, "") for q in questions]


# ------------------------------------------------------------------------------ heuristic


def test_pronoun_replaced_by_the_whole_entity():
    c = condense_heuristic("它是哪一年组建的？", h("金山煤业公司的主要产品是什么？"))
    assert c == Condensed("金山煤业公司是哪一年组建的？", "heuristic", "金山煤业公司")


def test_one_character_jieba_token_kept_in_the_entity():
    # jieba: 南/马路/小学 — the old heuristic dropped 南 and glued keywords to the pronoun
    c = condense_heuristic("那它有多少名教师？", h("南马路小学始建于哪一年？"))
    assert c.text == "南马路小学有多少名教师？"
    assert c.entity == "南马路小学"
    assert " " not in c.text


def test_ellipsis_year_swap():
    c = condense_heuristic("那2009年呢？", h("2010年某村有多少党员？"))
    assert c.text == "2009年某村有多少党员？" and c.method == "heuristic"


def test_ellipsis_title_swap():
    assert condense_heuristic("副组长呢？", h("组长是谁？")).text == "副组长是谁？"
    assert condense_heuristic("副县长呢？", h("清河县的县长是谁？")).text == "清河县的副县长是谁？"


def test_ellipsis_entity_swap_and_asked_slot():
    assert condense_heuristic("那白杨镇呢？", h("柳林镇有多少个行政村？")).text == "白杨镇有多少个行政村？"
    assert condense_heuristic("党员呢？", h("柳林村现有多少户村民、多少口人？")).text == "柳林村现有多少党员？"


def test_traditional_question_keeps_its_script():
    c = condense_heuristic("它有多少名黨員？", h("長青村黨支部是哪一年成立的？"))
    assert c.text == "長青村黨支部有多少名黨員？"
    assert detect_script(c.text) == "traditional"
    # a script-neutral follow-up takes the previous question's script
    c = condense_heuristic("那2012年呢？", h("清河縣2010年的糧食產量是多少？"))
    assert c.text == "清河縣2012年的糧食產量是多少？"
    # simplified follow-up after a traditional question: simplified
    assert condense_heuristic("它有多少名党员？", h("長青村黨支部是哪一年成立的？")).text == "长青村党支部有多少名党员？"


def test_english_follow_ups():
    c = condense_heuristic("And in 2009?", h("What was the grain output of Willow village in 2008?"))
    assert c.text == "What was the grain output of Willow village in 2009?"
    c = condense_heuristic("How many members does it have?", h("When was the Willow Village branch founded?"))
    assert c.text == "How many members does Willow Village branch have?"
    c = condense_heuristic("How many members does it have?", h("柳林村党支部是哪一年成立的？"))
    assert c.text == "How many members does 柳林村党支部 have?"


def test_demonstratives_and_place_words():
    assert condense_heuristic("该校的校训是什么？", h("红旗中学是哪一年建校的？")).text == "红旗中学的校训是什么？"
    assert condense_heuristic("这里有多少户？", h("柳林村位于哪个乡？")).text == "柳林村有多少户？"
    c = condense_heuristic("这个项目的规模是多少吨？", h("金山公司新上的焦化项目年产值多少？"))
    assert c.text == "金山公司焦化项目的规模是多少吨？"


def test_personal_pronoun_prefers_the_person_and_it_the_organisation():
    hist = h("金山煤矿矿长李为民毕业于哪所大学？")
    assert condense_heuristic("他是哪一年入党的？", hist).text == "金山煤矿矿长李为民是哪一年入党的？"
    assert condense_heuristic("它是哪一年投产的？", hist).text == "金山煤矿是哪一年投产的？"


def test_plural_pronoun_takes_coordinated_entities():
    c = condense_heuristic("它们是哪一年成立的？", h("东方网和南方日报报道了什么？"))
    assert c.text == "东方网和南方日报是哪一年成立的？"


def test_chain_of_follow_ups_is_resolved():
    c = condense_heuristic("那2009年呢？", h("柳林村2010年有多少户村民？", "党员呢？"))
    assert c.text == "柳林村2009年有多少党员？"


def test_standalone_questions_stay_unchanged():
    for q in ("清河县委实施了哪些措施？", "南马路小学有多少名教师？"):
        assert not needs_context(q)
        assert condense_heuristic(q, h("柳林村位于哪个乡？")) == Condensed(q, "unchanged", "")
    assert condense_heuristic("它是哪一年组建的？", []) == Condensed("它是哪一年组建的？", "unchanged", "")


def test_no_entity_no_slot_stays_unchanged():
    assert condense_heuristic("它是什么？", h("怎么办？")).method == "unchanged"


# ------------------------------------------------------------------------------ with a model

PREV = h("金山煤业公司的主要产品是什么？")
Q = "它是哪一年组建的？"


def test_good_model_rewrite_is_accepted_and_prompt_is_few_shot():
    m = FakeChatModel(responses=["金山煤业公司是哪一年组建的？"])
    c = condense(Q, PREV, m)
    assert c == Condensed("金山煤业公司是哪一年组建的？", "model", "金山煤业公司")
    prompt = m.prompts[0]
    assert "名称：金山煤业公司" in prompt and "追问：它是哪一年组建的？" in prompt
    assert "那2012年呢？" in prompt  # the examples


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("金山煤业公司成立于哪一年？", "lost word: 组建"),  # changed the question's own word
        ("煤业公司是哪一年组建的？", "entity not whole"),  # lost part of the entity
        ("金山煤业公司组建于2003年。", "not a question"),  # an answer
        ("金山煤业公司的主要产品是什么？它是哪一年组建的？", "not one question"),
        ("它是哪一年组建的？", "entity not whole"),  # echoed
        ("金山煤业公司的产品中，它是哪一年组建的？", "pronoun kept"),
    ],
)
def test_bad_model_rewrite_falls_back_to_the_heuristic(reply, reason):
    assert check_rewrite(Q, reply, "金山煤业公司", PREV[0][0]).startswith(reason)
    c = condense(Q, PREV, FakeChatModel(responses=[reply]))
    assert c == Condensed("金山煤业公司是哪一年组建的？", "heuristic", "金山煤业公司")


def test_model_rewrite_with_a_changed_year_is_rejected():
    hist = h("柳林村2008年的粮食产量是多少？")
    assert check_rewrite("那2009年呢？", "柳林村2008年和2009年的粮食产量是多少？", "柳林村", hist[0][0]) == "numbers changed"
    assert condense("那2009年呢？", hist, FakeChatModel(responses=["柳林村2009年的粮食产量是多少？"])).method == "model"


def test_model_rewrite_that_keeps_the_ellipsis_is_rejected():
    hist = h("柳林村现有多少户村民？")
    assert check_rewrite("党员呢？", "柳林村现有多少户村民、党员呢？", "柳林村", hist[0][0]) == "ellipsis kept"
    assert condense("党员呢？", hist, FakeChatModel(responses=["柳林村现有多少户村民、党员呢？"])).text == "柳林村现有多少党员？"
    q, prev = "And in 2009?", "What was the output of Willow village in 2008?"
    assert check_rewrite(q, "And in 2009, what was the output of Willow village?", "Willow village", prev) == "ellipsis kept"


def test_model_output_converted_to_the_question_script():
    c = condense("它有多少名黨員？", h("長青村黨支部是哪一年成立的？"), FakeChatModel(responses=["长青村党支部有多少名党员？"]))
    assert c == Condensed("長青村黨支部有多少名黨員？", "model", "長青村黨支部")


def test_model_failure_or_no_context_needed():
    class Broken(FakeChatModel):
        def _generate(self, *a, **k):
            raise RuntimeError("boom")

    assert condense(Q, PREV, Broken()).method == "heuristic"
    m = FakeChatModel(responses=["不该被调用"])
    assert condense("清河县委实施了哪些措施？", PREV, m).method == "unchanged"
    assert m.calls == []


# ------------------------------------------------------------------------------ cross-lingual


def test_to_chinese_query_good_and_cached(tmp_path):
    path = tmp_path / "q.json"
    m = FakeChatModel(responses=["2010年柳林村有多少名党员？"], model_name="fake-x")
    q = "How many party members did Willow village have in 2010?"
    assert to_chinese_query(q, m, cache=QueryCache(path)) == "2010年柳林村有多少名党员？"
    assert "Translate" not in m.prompts[0] and "保留" in m.prompts[0]
    # a new cache object over the same file: a hit, the model is not called again
    assert to_chinese_query(q.upper() + "  ", m, cache=QueryCache(path)) == "2010年柳林村有多少名党员？"
    assert len(m.calls) == 1
    data = json.loads(path.read_text(encoding="utf-8"))
    assert list(data.values()) == ["2010年柳林村有多少名党员？"]
    assert not list(tmp_path.glob(".cache-*"))  # the atomic write left no temp file


def test_unwritable_cache_file_keeps_working_in_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = QueryCache(blocker / "sub" / "q.json")  # a file where a folder should be
    m = FakeChatModel(responses=["柳林村有多少人？"])
    assert to_chinese_query("How many people live in Willow village?", m, cache) == "柳林村有多少人？"
    assert to_chinese_query("How many people live in Willow village?", m, cache) == "柳林村有多少人？"
    assert len(m.calls) == 1


@pytest.mark.parametrize("reply", ["How many members?", "柳林村有多少名党员？", "2010年"])
def test_to_chinese_query_rejects(reply):
    # no Chinese; the number dropped; too little Chinese
    m = FakeChatModel(responses=[reply])
    assert to_chinese_query("How many members did Willow village have in 2010?", m, cache=QueryCache()) == ""


def test_to_chinese_query_only_for_english_and_lru_hit():
    m = FakeChatModel(responses=["柳林村有多少人？"])
    assert to_chinese_query("柳林村有多少人？", m) == "" and m.calls == []
    assert to_chinese_query("How many people live in 柳林村 now?", m, QueryCache()) == "柳林村有多少人？"
    m.reset()
    cache = QueryCache()
    assert to_chinese_query("How many people live in Willow village?", m, cache) == "柳林村有多少人？"
    assert to_chinese_query("How many people live in Willow village?", m, cache) == "柳林村有多少人？"
    assert len(m.calls) == 1


# ------------------------------------------------------------------------------ real model


@pytest.mark.slow
def test_local_small_model_condenses_and_translates():
    """CI runs `rag models install` first: a missing model is a failure here, not a skip."""
    import os

    from rag.config import LLMConfig, load_config
    from rag.llm.backends import get_chat_model

    cfg = load_config(env={k: v for k, v in os.environ.items() if k in ("RAG_HOME", "RAG_MODELS_DIR")})
    llm_cfg = LLMConfig(backend="local", model="qwen2.5-0.5b", max_tokens=64, temperature=0.0)
    model = get_chat_model(llm_cfg, cfg.paths.models_dir, slot="condense")
    c = condense("它有多少名党员？", h("白杨镇卫生院是哪一年建成的？"), model)
    assert c.method in ("model", "heuristic")
    assert "白杨镇卫生院" in c.text and "党员" in c.text and "它" not in c.text
    zh = to_chinese_query("How many party members were there in 2015?", model, cache=QueryCache())
    assert "2015" in zh and any("\u4e00" <= ch <= "\u9fff" for ch in zh)  # checked, so never a wrong number
