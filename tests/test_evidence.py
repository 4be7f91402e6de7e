"""Evidence selection (rag.answer.evidence): the sentences the answer needs, enumerations whole, also
when an enumeration crosses a chunk boundary."""

from __future__ import annotations

import pytest

from rag.chunk.sections import count_tokens
from rag.answer.evidence import enum_index, enumeration_runs, extend_enumerations, select
from rag.answer.prompts import render_evidence
from rag.types import Chunk, Hit, Passage


def chunk(n: int, text: str, doc: str = "d", start: int = 0) -> Chunk:
    return Chunk(f"{doc}#{n}", doc, n, "某县简报", ("一、工作措施",), text, start, start + len(text))


def passage(n: int, c: Chunk) -> Passage:
    return Passage.from_hit(n, Hit(c, 1.0, n))


@pytest.mark.parametrize(
    "sentence, expected",
    [
        ("一是加强学习。", ("是", 1)),
        ("其二，改进作风。", ("其", 2)),
        ("第三，严格纪律。", ("第", 3)),
        ("（四）阵地宣传。", ("(cn)", 4)),
        ("(2)建立档案。", ("(1)", 2)),
        ("③ 定期回访。", ("①", 3)),
        ("其次，开展培训。", ("首先", 2)),
        ("第一书记到村任职。", None),  # 第一书记 is a title, not an item
        ("会议指出。", None),
    ],
)
def test_enumeration_markers(sentence, expected):
    assert enum_index(sentence) == expected


def test_runs_keep_the_head_and_items_with_their_continuations():
    s = ["会议还提出了三点要求：", "一是加强学习。", "学习要经常。", "二是改进作风。", "三是严格纪律。", "散会。"]
    assert enumeration_runs(s) == [(0, 4)]  # head (ends with a colon) .. the third item
    # 首先 / 其次 / 最后 is one run
    assert enumeration_runs(["首先，查问题。", "其次，定措施。", "最后，抓落实。"]) == [(0, 2)]


def test_a_selected_item_brings_its_whole_enumeration():
    text = (
        "全县共有党员3200名。会议对下一步工作提出四项要求：一是加强理论学习。二是改进工作作风。"
        "三是严格组织纪律。四是强化廉洁自律。天气晴朗，会场布置简朴。"
    )
    p = passage(1, chunk(0, text))
    shown = select("会议提出的要求有哪些？", [p], 400)[1]
    for item in ("一是加强理论学习", "二是改进工作作风", "三是严格组织纪律", "四是强化廉洁自律"):
        assert item in shown
    assert "天气晴朗" not in shown and shown.endswith("……")


def test_selection_keeps_the_answer_within_the_budget():
    filler = "这是一段与问题无关的背景介绍文字。" * 12
    text = filler + "全局现有干部职工68人，其中党员32人。" + filler
    p = passage(1, chunk(0, text))
    shown = select("全局有多少干部职工？", [p], 120)
    assert "全局现有干部职工68人" in shown[1] and "……" in shown[1]
    # the rendered evidence (headers included) stays near the budget: 120 + delimiters
    assert count_tokens(render_evidence([p], shown)) <= 140
    assert count_tokens(render_evidence([p], shown)) < count_tokens(render_evidence([p]))


def test_a_passage_with_nothing_relevant_is_left_out_of_the_prompt():
    a = passage(1, chunk(0, "全局现有干部职工68人。"))
    b = passage(2, chunk(0, "量子计算机利用叠加态进行运算。", doc="e"))
    shown = select("全局有多少干部职工？", [a, b], 300)
    assert shown[2] == ""
    rendered = render_evidence([a, b], shown)
    assert "【1】" in rendered and "【2】" not in rendered


def test_enumeration_cut_by_a_chunk_boundary_is_completed_from_the_next_chunk():
    # chunk 0 ends after item two; chunk 1 starts with item three: the passage gets chunk 1
    c0 = chunk(0, "会议提出三项措施：一是建立台账。二是定期回访。", start=0)
    c1 = chunk(1, "三是考核问效。其他事项另行通知。", start=len(c0.text))
    chunks = {c.chunk_id: c for c in (c0, c1)}
    (p,) = extend_enumerations([passage(1, c0)], chunks.get)
    assert "三是考核问效" in p.text and [c.chunk_id for c, _ in p.parts] == ["d#0", "d#1"]
    # the merged passage's parts keep exact offsets into its text
    assert p.text[p.parts[1][1] :].startswith("三是考核问效")
    # and the selection shows all three items
    shown = select("会议提出了哪些措施？", [p], 400)[1]
    assert all(x in shown for x in ("一是建立台账", "二是定期回访", "三是考核问效"))


def test_a_passage_starting_mid_enumeration_gets_the_previous_chunk():
    c0 = chunk(0, "村里推行三项制度：一是村务公开。", start=0)
    c1 = chunk(1, "二是民主评议。三是财务审计。", start=len(c0.text))
    chunks = {c.chunk_id: c for c in (c0, c1)}
    (p,) = extend_enumerations([passage(1, c1)], chunks.get)
    assert p.text.startswith("村里推行三项制度") and p.chunk.start == 0


def test_no_neighbour_fetch_for_a_passage_without_enumeration():
    c0 = chunk(0, "全局现有干部职工68人。")
    calls = []

    def get(cid):
        calls.append(cid)
        return None

    (p,) = extend_enumerations([passage(1, c0)], get)
    assert p.text == c0.text and calls == []
