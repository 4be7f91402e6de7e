"""Metric functions against hand-computed values (the arithmetic is in the comments)."""

from __future__ import annotations

import doctest

import pytest

from rag.evaluate import metrics as M


def test_doctests():
    from rag.evaluate import retrieval_scores  # split out of metrics (re-exported there)

    res = [doctest.testmod(m, optionflags=doctest.ELLIPSIS) for m in (M, retrieval_scores)]
    assert sum(r.failed for r in res) == 0 and sum(r.attempted for r in res) > 20


# ----------------------------------------------------------------------------- tokens, EM, F1


def test_answer_tokens_mixed_segmentation():
    # CJK one per character (after t2s), alnum runs whole, punctuation/space dropped, width folded
    assert M.answer_tokens("《東北網》報導：ＧＤＰ增長8.5%") == ["东", "北", "网", "报", "导", "gdp", "增", "长", "8", "5"]
    assert "".join(M.answer_tokens("「五個好」， 即：A-1!")) == "五个好即a1"
    assert M.answer_tokens("") == []


def test_exact_match_folds_script_width_punct():
    assert M.exact_match("三百二十戶。", ["三百二十户"]) == 1.0
    assert M.exact_match("３２０户", ["320户"]) == 1.0  # full-width digits
    assert M.exact_match("三百二十户社员", ["三百二十户"]) == 0.0
    assert M.exact_match("任何", []) == 0.0  # no reference: nothing can match
    assert M.exact_match("", ["", "。"]) == 0.0  # empty/punctuation-only references are ignored


def test_char_f1_lcs_as_cmrc():
    # pred 哈尔滨冰雪节创办于1985年 → 哈 尔 滨 冰 雪 节 创 办 于 1985 年 (11 tokens)
    # ref 1985年 → 1985 年 (2); lcs 2 → P 2/11, R 1 → F1 = 2·(2/11)/(2/11+1) = (4/11)/(13/11) = 4/13
    assert M.char_f1("哈尔滨冰雪节创办于1985年", ["1985年"]) == pytest.approx(4 / 13)
    # number tokens are whole: 1986年 vs 1985年 share only 年 → lcs 1, P 1/2, R 1/2 → F1 0.5
    assert M.char_f1("1986年", ["1985年"]) == pytest.approx(0.5)
    # LCS is contiguous: pred 领导好班子 vs ref 领导班子好: longest common run 领导 (2) (not 4 as a bag would)
    # P = 2/5, R = 2/5 → F1 = 0.4
    assert M.char_f1("领导好班子", ["领导班子好"]) == pytest.approx(0.4)
    # max over references: second reference 王建國 matches fully (script folded) → 1.0
    assert M.char_f1("王建国", ["社长", "王建國"]) == 1.0
    assert M.char_f1("", ["王建国"]) == 0.0
    assert M.char_f1("王建国", []) == 0.0


def test_contains_and_list_coverage():
    assert M.contains_reference("社長是王建國，他說……", ["王建国"]) == 1.0
    assert M.contains_reference("社长是王建军", ["王建国"]) == 0.0
    items = ["领导班子好", "党员队伍好", ["工作机制好", "机制好"], "工作业绩好"]
    # present: 领导班子好, 機制好 (alternative of item 3) → 2 of 4 = 0.5
    assert M.list_coverage("要做到領導班子好，機制好。", items) == 0.5
    assert M.list_coverage("什么都没有", items) == 0.0
    assert M.list_coverage("x", []) is None


@pytest.mark.parametrize(
    "prediction, refs, items, correct",
    [
        # parts 46个 / 共有党员849人, both present though joined by "，" and the whole string is not
        ("先后组建了46个非公有制企业党组织，共有黨員849人【1】。", ["46個,共有黨員849人"], [], 1.0),
        # one part (430口人) missing
        ("现有152户村民。", ["152户,430口人"], [], 0.0),
        # a part must be found whole: 包专题辅导 is not in the answer
        ("包的是专题辅导、工作指导、解决难题", ["包专题辅导、包工作指导、包解决难题"], [], 0.0),
        # a one-part reference is the strict test
        ("社长是王建國", ["王建国"], [], 1.0),
        ("社长是王建军", ["王建国"], [], 0.0),
        # a list question: every item, whatever text is between them (3 of 3)
        ("一是带头学习提高【1】。认真学习……二是带头争创佳绩。三是带头服务群众。", ["带头学习提高、带头争创佳绩、带头服务群众"],
         ["带头学习提高", "带头争创佳绩", "带头服务群众"], 1.0),
        # 2 of 3 items is not correct, even though each part found would not matter
        ("带头学习提高、带头服务群众", ["带头学习提高、带头争创佳绩、带头服务群众"],
         ["带头学习提高", "带头争创佳绩", "带头服务群众"], 0.0),
    ],
)
def test_answer_correct_needs_every_part(prediction, refs, items, correct):
    assert M.answer_correct(prediction, refs, items) == correct
    assert M.contains_reference(prediction, refs) <= M.answer_correct(prediction, refs, items) or items


# ----------------------------------------------------------------------------- citations


def test_lexical_support_bigrams():
    # statement 冰雪节一月五日开幕 → bigrams 冰雪 雪节 节一 一月 月五 五日 日开 开幕 (8)
    # passage 冰雪節每年一月五日開幕 → contains 冰雪 雪节 一月 月五 五日 日开 开幕 (7), not 节一 → 7/8
    assert M.lexical_support("冰雪节一月五日开幕【1】", "冰雪節每年一月五日開幕") == pytest.approx(7 / 8)
    assert M.lexical_support("", "任何") == 0.0
    # one-token statement: unigram set {王} in passage → 1.0
    assert M.lexical_support("王", "王建国") == 1.0


def test_citation_precision_recheck_and_flag_fallback():
    cs = [
        {"n": 1, "chunk_id": "a#0", "statement": "冰雪节创办于1985年", "supported": False},  # recheck: supported
        {"n": 2, "chunk_id": "a#1", "statement": "冰雪节创办于1985年", "supported": True},  # recheck: not supported
        {"n": 3, "chunk_id": "zz#9", "statement": "别的", "supported": True},  # no passage → trust flag (1)
    ]
    passages = {"a#0": "哈尔滨国际冰雪节创办于1985年。", "a#1": "合作社成立于2008年。"}
    # a#1: statement bigrams 冰雪 雪节 节创 创办 办于 于1985 1985年 (7); passage has 办于? no: 成立于 → 立于;
    # passage bigrams contain none of them except... 于2008 ≠ 于1985 → 0/7 < 0.5 → unsupported
    # precision = (1 + 0 + 1) / 3
    assert M.citation_precision(cs, passages) == pytest.approx(2 / 3)
    assert M.citation_precision([], passages) is None


def test_citation_recall_by_markers_and_statements():
    passages = {"a#0": "哈尔滨国际冰雪节创办于1985年，每年一月五日开幕。", "a#1": "2010年吸引游客超过八百万人次。"}
    cs = [
        {"n": 1, "chunk_id": "a#0", "statement": "冰雪节创办于1985年。", "supported": True},
        {"n": 2, "chunk_id": "a#0", "statement": "游客超过八百万。", "supported": True},  # cites the wrong passage
    ]
    answer = "冰雪节创办于1985年。【1】游客超过八百万。【2】门票免费。"
    # statements: 3. #1 supported by a#0; #2 cites a#0 which lacks 游客…八百万 → no; #3 carries nothing → 1/3
    assert M.citation_recall(answer, cs, passages) == pytest.approx(1 / 3)
    # markers stripped from the text: citations attach through their recorded statement → same 1/3
    assert M.citation_recall(M.strip_markers(answer), cs, passages) == pytest.approx(1 / 3)
    assert M.citation_recall("。。", cs, passages) is None


def test_cites_evidence():
    assert M.cites_evidence([], ["d#1"]) == 0.0
    assert M.cites_evidence(["d#1"], ["d#0", "d#1"]) == 1.0


# ----------------------------------------------------------------------------- refusal, latency


def test_refusal_scores():
    answerable = [True, True, True, False, False, False]
    refused = [True, False, False, True, True, False]
    # unanswerable refused 2 of 3 → 0.6667; answerable refused 1 of 3 → 0.3333
    r = M.refusal_scores(answerable, refused)
    assert r["refusal_accuracy"] == pytest.approx(2 / 3)
    assert r["false_refusal_rate"] == pytest.approx(1 / 3)
    assert M.refusal_scores([True], [False])["refusal_accuracy"] is None
    with pytest.raises(ValueError):
        M.refusal_scores([True], [])


def test_latency_summary():
    # sorted 0.1 0.2 0.3 0.4 1.0: p50 = 0.3; p95 at position 0.95·4 = 3.8 → 0.4 + 0.8·(1.0-0.4) = 0.88
    s = M.latency_summary([0.4, 0.1, 1.0, 0.3, 0.2])
    assert s["p50"] == pytest.approx(0.3)
    assert s["p95"] == pytest.approx(0.88)
    assert s["mean"] == pytest.approx(0.4)  # 2.0 / 5
    assert s["n"] == 5
    assert M.latency_summary([None])["p50"] is None


# ----------------------------------------------------------------------------- chunk qrels


def test_locate_quote_fallbacks():
    text = "按:6月25日,省委召開\n紀念大會。"
    # 按 : 6 月 2 5 日 , → 省 is character 8
    assert M.locate_quote(text, "省委召開", start=8) == (8, 12)
    assert M.locate_quote(text, "省委召開", start=2) == (8, 12)  # wrong start → search
    # without the line break (index 12) and in simplified script: the folding pass finds 省…會 = 8..17
    assert M.locate_quote(text, "省委召开纪念大会") == (8, 17)
    assert M.locate_quote(text, "省委召開紀念大會") == (8, 17)  # whitespace-only pass
    assert M.locate_quote(text, "不存在") is None
    assert M.locate_quote(text, "") is None


def test_chunk_qrels_contained_straddling_and_overlap():
    #            0         1         2         3
    #            0123456789012345678901234567890123456
    text = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥天地玄黄宇宙洪荒日月盈昃辰宿列张"
    chunks = {"d": [("d#0", 0, 12), ("d#1", 10, 22), ("d#2", 22, 36)]}
    ev = {
        "inside": [{"doc_id": "d", "quote": text[2:6]}],  # 2..6 only in #0
        "overlap": [{"doc_id": "d", "quote": text[10:12]}],  # 10..12 inside both #0 and #1
        # 18..26 straddles #1/#2: overlaps #1 by 4 (18..22) and #2 by 4 (22..26) of 8 → both ≥ 4
        "straddle": [{"doc_id": "d", "quote": text[18:26]}],
        # 16..26: #1 overlap 6 (16..22), #2 overlap 4 (22..26) of 10, half = 5 → only #1
        "mostly": [{"doc_id": "d", "quote": text[16:26]}],
        "missing": [{"doc_id": "d", "quote": "没有"}, {"doc_id": "x", "quote": "甲"}],
    }
    rel, problems = M.chunk_qrels(ev, {"d": text}, chunks)
    assert rel["inside"] == [["d#0"]]
    assert rel["overlap"] == [["d#0", "d#1"]]
    assert rel["straddle"] == [["d#1", "d#2"]]
    assert rel["mostly"] == [["d#1"]]
    assert "missing" not in rel
    assert [p[:2] for p in problems] == [("missing", 0), ("missing", 1)]


def test_labels_survive_rechunking():
    text = "一二三四五六七八九十" * 4
    quote_ev = {"q": [{"doc_id": "d", "quote": text[13:17], "start": 13}]}
    a, _ = M.chunk_qrels(quote_ev, {"d": text}, {"d": [("d#0", 0, 20), ("d#1", 20, 40)]})
    b, _ = M.chunk_qrels(quote_ev, {"d": text}, {"d": [("d#0", 0, 8), ("d#1", 8, 16), ("d#2", 16, 24), ("d#3", 24, 40)]})
    assert a == {"q": [["d#0"]]}
    # 13..17 in 8-wide chunks: #1 holds 13..16 (3 of 4 ≥ 2), #2 holds 16..17 (1 < 2) → #1
    assert b == {"q": [["d#1"]]}


# ----------------------------------------------------------------------------- retrieval via ranx


def test_retrieval_metrics_hand_computed():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1, "c": 1}, "q3": {"z": 1}}
    run = {"q1": ["x", "a", "y"], "q2": ["b", "x", "c"], "q3": ["x"]}
    means, per = M.retrieval_metrics(qrels, run, ks=(1, 3))
    # recall@1: q1 0, q2 1/2, q3 0 → 0.5/3
    assert means["recall@1"] == pytest.approx(0.5 / 3)
    # recall@3: q1 1, q2 1, q3 0 → 2/3
    assert means["recall@3"] == pytest.approx(2 / 3)
    # MRR@10: q1 1/2, q2 1, q3 0 → 1.5/3 = 0.5
    assert means["mrr@10"] == pytest.approx(0.5)
    # nDCG@10 q2: DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) = 1.63093 → 0.91972
    assert per["q2"]["ndcg@10"] == pytest.approx(1.5 / (1 + 1 / 1.584962500721156), abs=1e-6)
    assert per["q3"] == {"recall@1": 0.0, "recall@3": 0.0, "mrr@10": 0.0, "ndcg@10": 0.0}


def test_retrieval_metrics_missing_runs_and_empty_qrels():
    means, per = M.retrieval_metrics({"q1": {"a": 1}, "q2": {"b": 1}}, {"q1": ["a"]}, ks=(1,))
    # q2 never retrieved anything → 0; mean (1 + 0)/2
    assert means["recall@1"] == 0.5 and per["q2"]["recall@1"] == 0.0
    means, per = M.retrieval_metrics({"q": {}}, {"q": ["a"]}, ks=(1,))
    assert means["recall@1"] is None and per == {}
    means, _ = M.retrieval_metrics({"q": {"a": 1}}, {}, ks=(1,))
    assert means["recall@1"] == 0.0


def test_evidence_ranking_alternatives_count_once():
    # quote 0 is in d#1 and d#2 (overlapping chunks), quote 1 in d#4
    quotes = [["d#1", "d#2"], ["d#4"]]
    ranked = M.evidence_ranking(["d#2", "d#1", "d#4"], quotes)
    assert ranked == ["ev0", "d#1", "ev1"]
    means, _ = M.retrieval_metrics({"q": {"ev0": 1, "ev1": 1}}, {"q": ranked}, ks=(1, 3))
    # recall@1: 1 of 2 quotes found; recall@3: both; MRR 1
    assert (means["recall@1"], means["recall@3"], means["mrr@10"]) == (0.5, 1.0, 1.0)


def test_doc_ranking():
    assert M.doc_ranking(["b", "b", "a", "c", "a"]) == ["b", "a", "c"]


def test_split_statements():
    s = M.split_statements("第一句。【1】第二句！\n第三句【2】【3】。")
    assert s == ["第一句。【1】", "第二句！", "第三句。【2】【3】"]


def test_markers_follow_the_citation_grammar():
    # ranges, lists and square brackets read as rag.cite.resolve reads them (rag.text.markers)
    assert M.strip_markers("甲【1-3】乙[2]丙【1，4】。") == "甲乙丙。"
    assert M._markers("甲【1-3】乙[2]丙【1，4】。") == [1, 2, 3, 2, 1, 4]
    assert M.split_statements("第一句。【1-2】第二句。") == ["第一句。【1-2】", "第二句。"]


def test_quote_in_a_heading_maps_to_the_chunk_below_it():
    # chunkers keep headings out of the chunk span and carry them in the heading path:
    # text = 标题\n一、总体要求\n正文… ; the quote 一、总体要求 (3..9) lies in no chunk span
    text = "标题\n一、总体要求\n正文第一段。\n二、工作措施\n正文第二段。"
    chunks = {"d": [("d#0", 10, 16, "标题 › 一、总体要求"), ("d#1", 24, 30, "标题 › 二、工作措施")]}
    rel, problems = M.chunk_qrels({"q": [{"doc_id": "d", "quote": "一、總體要求"}]}, {"d": text}, chunks)
    assert rel == {"q": [["d#0"]]} and problems == []
    # the second heading (17..23) → the first chunk after it whose heading holds it: d#1
    rel, _ = M.chunk_qrels({"q": [{"doc_id": "d", "quote": "二、工作措施"}]}, {"d": text}, chunks)
    assert rel == {"q": [["d#1"]]}
    # a quote neither in a span nor in any heading stays unplaced
    rel, problems = M.chunk_qrels({"q": [{"doc_id": "d", "quote": "标题"}]}, {"d": {"d": text}["d"]},
                                  {"d": [("d#0", 10, 16, "其他")]})
    assert rel == {} and problems[0][2].startswith("no chunk")


def test_english_citations_are_rechecked_by_the_facts_they_state():
    p = {"a#0": "富锦市委选派了29名优秀乡镇后备干部到村任第一书记。"}
    good = [{"chunk_id": "a#0", "statement": "The Fujin committee sent 29 reserve cadres to the villages.", "supported": True}]
    wrong = [{"chunk_id": "a#0", "statement": "The Fujin committee sent 30 reserve cadres to the villages.", "supported": True}]
    vague = [{"chunk_id": "a#0", "statement": "The committee cares about villages.", "supported": False}]
    assert M.citation_precision(good, p) == 1.0  # no shared bigrams, but the number is there
    assert M.citation_precision(wrong, p) == 0.0  # the system's flag does not save a wrong number
    assert M.citation_precision(vague, p) == 0.0  # nothing to recheck: the system's own flag stands
