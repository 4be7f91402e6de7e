"""Evidence selection (rag.answer.evidence): the sentences the answer needs, enumerations whole, also
when an enumeration crosses a chunk boundary."""

from __future__ import annotations

import pytest

from rag.chunk.sections import count_tokens
from rag.answer.evidence import extend_enumerations, select
from rag.text.enumerations import enum_index, enumeration_runs
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


EXPLAIN = "我们为此召开了多次会议。各部门分工负责。群众反映良好。"  # three sentences between items


def test_items_explained_at_length_are_one_enumeration():
    sents = ["走活了三步棋：", "一是休渔转产。", *EXPLAIN.split("。")[:3], "二是以养代捕。", "三是开发旅游。"]
    sents = [x if x.endswith(("。", "：")) else x + "。" for x in sents]
    assert enumeration_runs(sents) == [(0, 6)]


def test_a_head_at_a_chunk_end_brings_the_items_of_the_next_chunk():
    # "…走活了『三步棋』。" names a count and ends chunk 0; chunk 1 opens with the first item
    c0 = chunk(0, "近年来，我们走活了『三步棋』。", start=0)
    c1 = chunk(1, "一是休渔垦荒搞转产。" + EXPLAIN + "二是以养代捕蓄资源。", start=len(c0.text))
    (p,) = extend_enumerations([passage(1, c0)], {c.chunk_id: c for c in (c0, c1)}.get)
    assert "二是以养代捕蓄资源" in p.text


def test_an_item_explained_at_length_still_continues_into_the_next_chunk():
    c0 = chunk(0, "全村抓了三件事。一是修路。" + EXPLAIN, start=0)
    c1 = chunk(1, "二是建校。三是引水。", start=len(c0.text))
    c2 = chunk(0, "全村抓了三件事。一是修路。" + EXPLAIN, doc="e")
    other = {"e#1": chunk(1, "一是另一件事。", doc="e")}  # a new enumeration, not the continuation
    (p,) = extend_enumerations([passage(1, c0)], {c.chunk_id: c for c in (c0, c1)}.get)
    assert p.text.endswith("三是引水。")
    (q,) = extend_enumerations([passage(1, c2)], other.get)
    assert q.text == c2.text


def test_a_long_enumeration_is_shown_as_its_outline():
    # 3 items × (1 + 3 explaining sentences) + head = 13 sentences > RUN_WHOLE (8): the model sees
    # the head and the item sentences, plus the best-matching sentence
    t = "全村抓了三件事。一是修路。" + EXPLAIN + "二是建校。" + EXPLAIN + "三是引水。" + EXPLAIN
    shown = select("全村抓了哪三件事？", [passage(1, chunk(0, t))], 400)[1]
    assert all(x in shown for x in ("全村抓了三件事", "一是修路", "二是建校", "三是引水"))
    assert shown.count("各部门分工负责") <= 1
