"""rag.index.bm25: the analyzer on mixed scripts/English/digits, and the persisted index."""

import numpy as np
import pytest

from rag.index.bm25 import BM25Index, tokenize, top_k
from rag.text.norm import s2t


def test_tokenize_mixed_traditional_english_digits():
    toks = tokenize("東北網報道：COVID19 疫苗於2021年上市，iPhone 15 售價 5999 元！", analyzer="jieba+bigram")
    # script folded to simplified before segmentation
    assert "东北网" in toks and "东北" in toks and "北网" in toks
    assert "東北網" not in toks and "報道" not in toks
    # English lower-cased, mixed word split into letters and digits too; digits kept
    assert {"covid19", "covid", "19", "iphone", "15", "5999", "2021"} <= set(toks)
    assert "COVID19" not in toks
    # no punctuation or whitespace tokens
    assert not any(t.strip("：，！ ") == "" for t in toks)


def test_tokenize_bigram_only_and_unknown_names():
    # a made-up name jieba cannot know still matches through bigrams
    assert tokenize("龘靐齉", analyzer="bigram") == ["龘靐", "靐齉"]
    assert tokenize("「上」", analyzer="bigram") == ["上"]  # one-character run → unigram
    assert tokenize("", analyzer="bigram") == []
    with pytest.raises(ValueError):
        tokenize("x", analyzer="nope")


def test_fullwidth_and_case_fold():
    assert tokenize("ＡＩ２０２４", "bigram") == tokenize("ai2024", "bigram") == ["ai2024", "ai", "2024"]


@pytest.mark.parametrize("analyzer", ["jieba+bigram", "bigram", "jieba"])
def test_same_tokens_in_both_scripts(analyzer):
    simp = "学习型党组织建设和创先争优活动的主要内容是什么？"
    trad = s2t(simp)
    assert trad != simp
    assert tokenize(trad, analyzer) == tokenize(simp, analyzer)


CORPUS = [
    "安達市委組織部紮實推進學習型黨組織建設，開展創先爭優活動。",  # traditional
    "哈尔滨市举办冰雪节，吸引了大量游客。",
    "苹果公司发布 iPhone 15，售价 5999 元。",
    "黑龍江省農業廳推廣水稻新品種，畝產提高兩成。",
    "北京冬奥会于2022年2月举行。",
]


def test_same_top_hits_for_traditional_and_simplified_questions():
    idx = BM25Index.build(CORPUS)
    for simp in ["安达市如何推进学习型党组织建设？", "黑龙江省推广了什么水稻品种", "冬奥会哪一年举行"]:
        trad = s2t(simp)
        a, b = idx.search(simp, 3), idx.search(trad, 3)
        assert a == b and a, simp
    assert idx.search("安達市創先爭優", 1)[0][0] == 0
    assert idx.search("iphone售价", 1)[0][0] == 2
    assert idx.search("完全无关的词语ＸＹＺ", 3) == []  # nothing matches → nothing returned


def test_save_load_roundtrip_and_subset(tmp_path):
    idx = BM25Index.build(CORPUS, "jieba+bigram")
    idx.save(tmp_path)
    loaded = BM25Index.load(tmp_path)
    q = "黑龙江水稻亩产"
    np.testing.assert_allclose(loaded.get_scores(q), idx.get_scores(q), rtol=1e-6)
    assert loaded.tokens(2) == idx.tokens(2)
    # an incremental subset (rows 0, 3 kept, one new text) scores like a fresh build of those texts
    new = "上海举办进博会。"
    sub = loaded.subset([0, 3], [tokenize(new)])
    fresh = BM25Index.build([CORPUS[0], CORPUS[3], new])
    for q in ["黑龙江水稻", "进博会在哪里举办", "安达 党组织"]:
        np.testing.assert_allclose(sub.get_scores(q), fresh.get_scores(q), rtol=1e-5)


def test_empty_index(tmp_path):
    idx = BM25Index.build([])
    assert idx.search("任何问题", 5) == []
    idx.save(tmp_path)
    assert BM25Index.load(tmp_path).search("任何问题", 5) == []


def test_top_k_ties_and_positive_only():
    s = np.array([1.0, 3.0, 1.0, 0.0, 3.0])
    assert top_k(s, 3) == [(1, 3.0), (4, 3.0), (0, 1.0)]  # ties → lower row first
    assert top_k(s, 10) == [(1, 3.0), (4, 3.0), (0, 1.0), (2, 1.0)]  # zero scores dropped
    assert top_k(s, 10, positive_only=False)[-1] == (3, 0.0)
    assert top_k(np.array([]), 3) == [] and top_k(s, 0) == []


def test_query_drops_interrogatives_but_never_everything():
    from rag.index.bm25 import tokenize_query

    q = tokenize_query("請問創先爭優活動是什麼時候開始的？")  # traditional: folded first
    assert "创先" in q and "开始" in q
    assert not any("什么" in t or "请问" in t for t in q)
    assert "什么" in tokenize("什么是创先争优")  # documents keep them
    assert tokenize_query("什么？") == tokenize("什么？") == ["什么", "什么"]  # nothing else left: keep them
