"""The claim checker (rag.cite.claims) on hand-made cases: what a user quoting into a report must
never see marked as checked, and paraphrases that must still pass."""

from __future__ import annotations

import pytest

from rag.cite.claims import check_claim, is_truncated, list_items
from rag.cite.quantities import missing_constraints, quantities, question_constraints

# A traditional-script passage (as the scraped pages are) and a simplified one.
HANT = (
    "寶泰隆煤化工公司組建於2003年，現有員工3000名，其中黨員412名。公司黨委書記焦雲同志"
    "提出了『三帶』要求：帶頭致富、帶領致富、帶動致富。"
)
HANS = "2009年，该村有党员32人。村党支部书记王建国带领群众修建了3条公路和1座桥。局内设8个股室，现有干部职工68人。"

CASES = [
    # (statement, passage, question, supported?, reason) — each with why in the comment
    # correct paraphrase: 于2003年组建 vs 組建於2003年 (script + word order differ; year matches)
    ("宝泰隆公司于2003年组建", HANT, "宝泰隆公司是哪一年组建的？", True, ""),
    # correct, counter paraphrased: 3000名员工 vs 員工3000名 (名 = 名); traditional statement too
    ("公司現有3000名員工", HANT, "宝泰隆公司有多少员工？", True, ""),
    ("该局有干部职工68名", HANS, "该局有多少干部职工？", True, ""),  # 68名 ~ 68人: both person counters
    # wrong year: 2004 is nowhere in the passage
    ("宝泰隆公司于2004年组建", HANT, "宝泰隆公司是哪一年组建的？", False, "missing content"),
    # near miss: the figure exists for 2009, the statement claims 2010
    ("2010年该村有党员32人", HANS, "2010年该村有多少党员？", False, "missing content"),
    # wrong unit: 68 is a count of people, not of 股室 (个)
    ("局内设68个股室", HANS, "局内设几个股室？", False, "missing content"),
    # wrong magnitude: 3000万 is not 3000
    ("公司有员工3000万名", HANT, "宝泰隆公司有多少员工？", False, "missing content"),
    # fabricated list: the three items occur nowhere (all words of the topic, as a model writes them)
    ("三带是指带头学习、带领创新、带动发展", HANT, "『三带』是指什么？", False, "missing content"),
    # one fabricated item among real ones is enough to fail
    ("三带是带头致富、带领致富、带动就业", HANT, "『三带』是指什么？", False, "missing content"),
    # the real list passes, in simplified script against the traditional passage
    ("三带是带头致富、带领致富、带动致富", HANT, "『三带』是指什么？", True, ""),
    # a name swapped: the secretary is 焦雲, not 李明
    ("公司党委书记是李明", HANT, "宝泰隆公司党委书记是谁？", False, "missing content"),
    ("公司党委书记是焦云同志", HANT, "宝泰隆公司党委书记是谁？", True, ""),
    # a statement that only repeats the question carries nothing to check
    ("宝泰隆公司党委书记是谁", HANT, "宝泰隆公司党委书记是谁？", False, "restates the question"),
    # truncated statements are never answers
    ("『三带』要求包括：", HANT, "『三带』是指什么？", False, "truncated"),
    ("The party secretary of the company is.", HANT, "Who is the party secretary?", False, "truncated"),
    # quoted term that the passage does not have
    ("公司提出了『五带头』要求", HANT, "公司提出了什么要求？", False, "missing content"),
    # the question's own quoted term is its topic, not a claim: the reason given must be in the passage
    ("开展『三帶』是因为要帶動致富", HANT, "为什么开展『三带』？", True, ""),
    # Chinese numerals against Arabic ones: 三条公路 = 3条公路
    ("村里修建了三条公路和一座桥", HANS, "该村修建了什么？", True, ""),
    # a numeral inside a place name (七台河: "七台" would read as 7 machines) is no quantity claim
    ("七台河宝泰隆公司组建于2003年", "七臺河寶泰隆公司組建於2003年。", "七台河宝泰隆公司组建于哪一年？", True, ""),
    # …also when the passage body does not repeat the name the question gave
    ("七台河宝泰隆公司组建于2003年", "我們寶泰隆公司組建於2003年。", "七臺河寶泰隆公司組建於哪一年？", True, ""),
    # a list marker is a position, not a quantity: "1、" does not back "1个"
    ("该局表彰了1个先进基层党组织", "1、到建党90周年时,我局要表彰一批先进基层党组织。", "该局表彰了多少个先进基层党组织？",
     False, "missing content"),
    # the question's year beside a count found elsewhere: a year from a heading's date range and a
    # count four sentences later are not one fact (NUMBER_WINDOW = 3 sentences)
    ("2011年表彰了12个先进党组织", "（2010年6月-2011年6月）\n要树立典型。要加强学习。要改进作风。\n现有先进党组织12个。",
     "2011年表彰了多少个先进党组织？", False, "numbers not stated together"),
    # the same two numbers stated in one sentence pass
    ("2009年该村有党员32人", HANS, "2009年该村有多少党员？", True, ""),
]


@pytest.mark.parametrize("statement,passage,question,ok,reason", CASES, ids=[c[0][:14] for c in CASES])
def test_claim_table(statement, passage, question, ok, reason):
    c = check_claim(statement, passage, question)
    assert c.supported is ok, c
    assert c.reason == reason, c
    if not ok and reason == "missing content":
        assert c.missing, "a failed claim says what is missing"


def test_missing_items_are_named():
    c = check_claim("宝泰隆公司于2004年组建", HANT, "宝泰隆公司是哪一年组建的？")
    assert c.missing == ("2004年",)
    c = check_claim("三带是带头致富、带领致富、带动就业", HANT, "『三带』是指什么？")
    assert c.missing == ("带动就业",)


def test_english_statement_needs_its_numbers_and_similarity():
    q = "When was the Baotailong company founded?"
    # no similarity callback: a number found in the passage is what can be checked
    assert check_claim("It was founded in 2003.", HANT, q).supported
    assert not check_claim("It was founded in 2005.", HANT, q).supported
    # magnitudes: 22亿元 is 2.2 billion, not 22 billion; stray Chinese filler claims nothing
    assets = "公司總資產22億元。"
    assert check_claim("Its total assets are 2.2 billion yuan.", assets, "What are its assets?").supported
    assert not check_claim("Its total assets are 22 billion yuan.", assets, "What are its assets?").supported
    assert check_claim("According to the existing资料, the assets are 2.2 billion yuan.", assets, "Assets?").supported
    # with a similarity callback, a statement without numbers is judged by it
    assert check_claim("It was formed by merging companies.", HANT, q, similarity=lambda a, b: 0.8).supported
    assert not check_claim("It makes cars.", HANT, q, similarity=lambda a, b: 0.1).supported


def test_quantities_units_and_scripts():
    # 員工3000余名 → 3000 persons; 二〇〇三年 → 2003 (year); 百分之二十五 → 25 %
    got = [(q.value, q.unit) for q in quantities("員工3000余名，二〇〇三年成立，占百分之二十五")]
    assert got == [(3000.0, "person"), (2003.0, "year"), (25.0, "%")]


def test_a_date_is_not_glued_to_the_next_word():
    # "26日到" must not become a soft word: the date is a strict item, found in the passage
    assert check_claim("她是5月26日到公司任职的", "黄某于5月26日到公司任职。", "她是哪天到公司任职的？").supported


def test_truncation_rules():
    assert is_truncated("主要有：")
    assert is_truncated("它的主要业务是")
    assert not is_truncated("它的主要业务是煤化工。")
    assert not is_truncated("The company was founded in 2003.")


def test_list_items_cut_the_lead_in():
    assert list_items("六学包括：带头学、系统学、促进学") == ["带头学", "系统学", "促进学"]
    # a lead-in without a colon or copula: the first item keeps what follows the last comma,
    # then at most as long as the longest other item ("培育一流作风": 6 characters)
    assert list_items("结合作风建设年活动,该局提出要打造一流队伍、培育一流作风、创造一流业绩")[0] == "打造一流队伍"
    assert check_claim("结合作风建设年活动,该局提出要打造一流队伍、培育一流作风、创造一流业绩",
                       "要打造一流队伍、培育一流作风、创造一流业绩。", "该局要打造哪几个一流？").supported
    # the passage has no "提出要" before the first item: the model's lead-in words must not count
    assert check_claim("结合作风建设年活动,该局提出要打造一流队伍、培育一流作风、创造一流业绩",
                       "结合我局作风建设年活动的开展,打造一流队伍、培育一流作风、创造一流业绩。",
                       "该局要打造哪几个一流？").supported
    # a fabricated first item is still caught
    assert not check_claim("该局提出要建设一流班子、培育一流作风、创造一流业绩",
                           "打造一流队伍、培育一流作风、创造一流业绩。", "该局要打造哪几个一流？").supported
    assert list_items("带头致富、带领致富") == []  # two parts: not an enumeration to check item by item


def test_question_constraints_for_near_misses():
    # the asked year is absent: the passages answer another year's question
    assert missing_constraints("2010年该村有多少党员？", [HANS]) == ["2010年"]
    assert missing_constraints("2009年该村有多少党员？", [HANS]) == []
    # quoted terms are no constraints (users paraphrase campaign names); numbers are
    assert missing_constraints("『五带头』是指什么？", [HANT]) == []
    assert missing_constraints("公司2004年有多少员工？", [HANT]) == ["2004年"]
    assert question_constraints("该局有多少干部职工？") == []


def _zh_overlap(a: str, b: str) -> float:
    # a stand-in for the embedding similarity: Chinese bigram overlap (English vs Chinese → 0,
    # as weak as e5-small's cross-lingual cosine can be)
    from rag.text.grams import bigrams

    ga, gb = bigrams(a), bigrams(b)
    return len(ga & gb) / len(ga) if ga else 0.0


FUJIN = "为促进后进村整体晋位升级,富锦市委选派了29名优秀乡镇科级后备干部到村任第一书记。全市共有村屯120个。"


def test_english_number_verified_through_the_chinese_query_of_its_sentence():
    q = "How many reserve cadres did the Fujin committee send to villages as first secretaries?"
    zh = "富锦市委选派了多少名后备干部到村任第一书记？"
    s = "The Fujin committee sent 29 reserve cadres to villages as first secretaries."
    assert not check_claim(s, FUJIN, q, similarity=_zh_overlap).supported  # cross-lingual cosine alone: too weak
    assert check_claim(s, FUJIN, q, similarity=_zh_overlap, query=zh).supported
    # the number is in the passage, but in a sentence the question is not about: not verified
    q2 = "How many villages does Fujin have?"
    c = check_claim("Fujin has 29 villages.", FUJIN, q2, similarity=_zh_overlap, query="富锦市有多少个村屯？")
    # "29" sits in the cadres sentence, whose overlap with the villages question is low
    assert not c.supported


def test_english_romanised_names_must_be_in_the_passage():
    p = "鸡西市一鸣网络科技公司总经理刘恩福说。"
    q = "Who is the general manager of Yiming Network Technology in Jixi?"
    zh = "鸡西市一鸣网络科技公司总经理是谁？"
    ok = check_claim("The general manager of Yiming Network Technology in Jixi is Liu Enfu.", p, q,
                     similarity=_zh_overlap, query=zh)
    assert ok.supported
    bad = check_claim("The general manager of Yiming Network Technology in Jixi is Bao Sheng.", p, q,
                      similarity=_zh_overlap, query=zh)
    assert not bad.supported and bad.missing == ("Bao Sheng",)
