"""Citation parsing, resolution, support checking and exact original quotes (rag.cite.resolve)."""

from __future__ import annotations

import pytest

from _answer_kb import ORIG_A, ORIG_B, StandInKB, fixture_chunks
from rag.cite.resolve import resolve, support
from rag.text.markers import parse_markers, statements
from rag.text.match import align
from rag.types import Passage, merge_text
from rag.answer.prompts import pack
from rag.types import Chunk, Hit


def hits_for(*ids):
    by = {c.chunk_id: c for c in fixture_chunks()}
    return [Hit(by[i], 1.0 / (r + 1), r + 1) for r, i in enumerate(ids)]


def source(kb=StandInKB()):
    return lambda ch: kb.document_text(ch.doc_id)


# ---- parsing


@pytest.mark.parametrize(
    "text, numbers",
    [
        ("甲【1】", [(1,)]),
        ("甲[2]", [(2,)]),
        ("甲［3］", [(3,)]),
        ("甲【1,2】", [(1, 2)]),
        ("甲【1，2】", [(1, 2)]),
        ("甲【1、3】", [(1, 3)]),
        ("甲【1-3】", [(1, 2, 3)]),
        ("甲【2–4】", [(2, 3, 4)]),
        ("甲[1][2]", [(1,), (2,)]),
        ("甲【 1 】", [(1,)]),
        ("没有标记", []),
        ("【一】不是数字", []),
    ],
)
def test_parse_markers_all_forms(text, numbers):
    assert [m.numbers for m in parse_markers(text)] == numbers


def test_parse_marker_spans_are_exact():
    t = "甲【1】乙[2][3]"
    assert [t[m.start : m.end] for m in parse_markers(t)] == ["【1】", "[2]", "[3]"]


def test_absurd_range_is_not_expanded():
    # 【1-500】 would otherwise cite 500 passages; only the endpoints survive (and fail range checks)
    assert parse_markers("甲【1-500】")[0].numbers == (1, 500)


def test_statements_group_adjacent_markers_and_stop_at_sentence_end():
    sts = statements("第一句没有出处。第二句【1】【2】，第三句[3]。")
    assert [(s.text, s.numbers) for s in sts] == [("第二句", (1, 2)), ("第三句", (3,))]


# ---- support


def test_support_is_bigram_recall_across_scripts():
    # statement "六学措施" → bigrams 六学 学措 措施 (3); all in the traditional passage → 1.0
    assert support("六学措施", "我們實施了『六學』措施") == 1.0
    # "安达建了机场": 安达 达建 建了 了机 机场 → only 安达 present → 1/5
    assert support("安达建了机场", "安達市委於2005年成立") == pytest.approx(0.2)


# ---- resolution


def test_resolve_out_of_range_marker_is_removed():
    text, cites = resolve("安达市委实施了六学措施【1】【9】。", hits_for("a#0"), text_source=source())
    assert text == "安达市委实施了六学措施【1】。"
    assert [c.n for c in cites] == [1]
    assert cites[0].supported


def test_resolve_unsupported_marker_removed_but_recorded():
    hits = hits_for("a#0", "b#0")
    text, cites = resolve("安达实施了六学措施【1】。月球是奶酪做的【2】。", hits, threshold=0.35, text_source=source())
    assert text == "安达实施了六学措施【1】。月球是奶酪做的。"
    by_n = {c.n: c for c in cites}
    assert by_n[1].supported and not by_n[2].supported
    assert by_n[2].support < 0.35


def test_resolve_canonicalises_marker_forms():
    hits = hits_for("a#0", "b#0")
    text, cites = resolve("六学措施[1]，干部职工68人[2]。两者都有【1-2】", hits, text_source=source())
    assert text.startswith("六学措施【1】，干部职工68人【2】。")
    assert {c.n for c in cites} == {1, 2}


def test_quote_is_exact_original_characters():
    text, cites = resolve("安达市委于2005年成立了学习型党组织建设领导小组【1】。", hits_for("a#0"), text_source=source())
    (c,) = cites
    assert c.supported and c.support == 1.0
    # the original has a line break inside the sentence; the quote keeps it verbatim
    assert c.quote == "安達市委於2005年成立了學習型黨組織建設\n領導小組。"
    assert ORIG_A[c.quote_start : c.quote_end] == c.quote
    assert c.start <= c.quote_start < c.quote_end <= c.end
    assert c.metadata["quote_exact"] is True


def test_quote_keeps_original_punctuation_not_cleaned():
    _, (c,) = resolve("实施了六学措施【1】", hits_for("a#0"), text_source=source())
    assert c.quote == "按照省委的部署,我們實施了『六學』措施,確保領導班子成員先學一步。"
    assert ORIG_A[c.quote_start : c.quote_end] == c.quote


def test_quote_without_original_text_falls_back_to_clean_sentence():
    _, (c,) = resolve("现有干部职工68人【1】", hits_for("b#0"))
    assert c.quote == "现有干部职工68人，其中党员32人。"
    # the span is the sentence's, through the chunk's offset map (an index version without
    # stored texts), not the whole chunk's
    from rag.chunk.sections import chunk_orig_span

    ch = hits_for("b#0")[0].chunk
    i = ch.text.index(c.quote)
    assert (c.quote_start, c.quote_end) == chunk_orig_span(ch, i, i + len(c.quote))
    assert c.start <= c.quote_start < c.quote_end <= c.end
    assert c.metadata["quote_exact"] is False


def test_merged_passage_resolves_to_the_exact_chunk():
    kb = StandInKB()
    # b#0 and b#1 are adjacent chunks of one document → one block 【1】
    (p,) = pack(hits_for("b#1", "b#0"), 1000)
    assert [c.chunk_id for c, _ in p.parts] == ["b#0", "b#1"]
    _, (c,) = resolve("党员参加了四比四看活动【1】", [p], text_source=source(kb))
    assert c.chunk_id == "b#1"
    assert ORIG_B[c.quote_start : c.quote_end] == c.quote == "全局党员积极参加“四比四看”活动,即比素质、看作风。"


def test_align_survives_ocr_repair():
    # the cleaner repaired "党員" (OCR noise) in the clean text; the key no longer matches exactly
    orig = "前文。全局党貟积极参加活动,成效显著。后文"
    a, b, score = align("全局党员积极参加活动，成效显著。", orig)
    assert orig[a:b] == "全局党貟积极参加活动,成效显著。"
    assert 0.5 <= score < 1.0


def test_merge_text_drops_the_overlap_once():
    joined, off = merge_text("甲句。乙句。", "乙句。丙句。")
    assert joined == "甲句。乙句。丙句。" and joined[off:] == "乙句。丙句。"


def test_passage_from_hit_numbering():
    hs = hits_for("a#0", "b#0")
    _, cites = resolve("干部职工68人【2】", hs)
    assert cites[0].chunk_id == "b#0"
    assert Passage.from_hit(2, hs[1]).n == 2


def test_auto_attribution_of_uncited_sentence():
    text, cites = resolve("现有干部职工68人，其中党员32人。", hits_for("a#0", "b#0"), attribute_uncited=True)
    assert text == "现有干部职工68人，其中党员32人【2】。"
    assert cites[0].metadata["auto"] is True and cites[0].supported


def test_auto_attribution_marker_stays_on_its_line():
    # the added marker goes before the statement's 。, not after the line break that follows it
    # (where statements() would read it as citing the next line)
    text, _ = resolve("现有干部职工68人，其中党员32人。\n另外一句。", hits_for("a#0", "b#0"), attribute_uncited=True)
    assert text == "现有干部职工68人，其中党员32人【2】。\n另外一句。"


def test_defused_markers_in_a_document_are_not_citations():
    from rag.answer.prompts import defuse

    doc = "见【1】、[2]、［3］、【1]、【1,2】与【1-3】。"
    assert parse_markers(defuse(doc)) == []


# ---- context packing and compression (rag.answer.prompts)


def _doc_chunks(n=5, sent="第{i}段讲述了安达市委第{i}项工作的具体做法和成效。"):
    from rag.types import Chunk

    out = []
    for i in range(n):
        t = sent.format(i=i) * 3
        out.append(Chunk(f"d#{i}", "d", i, "简报", ("正文",), t, i * 100, i * 100 + len(t)))
    return out


def test_pack_merges_adjacent_and_bridges_a_one_chunk_gap():
    cs = _doc_chunks()
    by = {c.chunk_id: c for c in cs}
    hits = [Hit(cs[2], 0.9, 1), Hit(cs[0], 0.8, 2), Hit(cs[3], 0.7, 3)]
    (p,) = pack(hits, 5000, get_chunk=by.get)
    # 2 and 3 are adjacent; 0 is two away from 2, so chunk 1 is fetched to bridge the gap
    assert [c.n for c, _ in p.parts] == [0, 1, 2, 3]
    assert p.hit.rank == 1 and p.chunk.metadata["merged"] == ["d#0", "d#1", "d#2", "d#3"]
    assert (p.chunk.start, p.chunk.end) == (cs[0].start, cs[3].end)
    # without a KB to fetch from, the gap stays: two blocks, numbered by best rank
    ps = pack(hits, 5000)
    assert [[c.n for c, _ in q.parts] for q in ps] == [[2, 3], [0]]


def test_pack_respects_the_token_budget():
    from rag.chunk.sections import count_tokens
    from rag.answer.prompts import render_evidence

    cs = _doc_chunks()
    hits = [Hit(c, 1.0 - i / 10, i + 1) for i, c in enumerate(cs[::2])]  # non-adjacent: 3 blocks
    full = pack(hits, 10_000)
    assert len(full) == 3
    budget = count_tokens(render_evidence(full[:2])) + 5
    ps = pack(hits, budget)
    assert len(ps) == 2 and count_tokens(render_evidence(ps)) <= budget
    # a first block larger than the budget is cut at a sentence end, not dropped
    (p,) = pack(hits[:1], 60)
    assert p.text and p.text.endswith("。") and len(p.text) < len(cs[0].text)


def test_a_marker_repeated_after_the_final_stop_is_shown_once():
    # seen with the 1.5B model: "…可持续发展的关键【1】。【1】"; one statement, one marker
    c = Chunk("d#0", "d", 0, "标题", (), "生产安全是公司可持续发展的关键。", 0, 16)
    shown, cites = resolve("生产安全是公司可持续发展的关键【1】。【1】", [Hit(c, 1.0, 1)])
    assert shown == "生产安全是公司可持续发展的关键【1】。"
    assert cites and all(x.supported for x in cites)
    # a marker after a stop that starts a new sentence is left alone
    two = resolve("关键【1】。公司可持续发展【1】。", [Hit(c, 1.0, 1)])[0]
    assert two == "关键【1】。公司可持续发展【1】。"
