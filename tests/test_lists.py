"""rag.answer.lists: a list question naming its count is answered with the quoted enumeration when
the passages hold exactly that many items; otherwise the model answers, as before."""

from __future__ import annotations

import pytest

from _answer_kb import StandInKB, _chunks_for
from rag.answer.assistant import Assistant
from rag.answer.lists import asked_count, quoted_list
from rag.config import Config
from rag.llm.backends import FakeChatModel
from rag.types import Chunk, Hit, Passage


@pytest.mark.parametrize("question, n", [
    ("八岔村走活的“三步棋”是哪三步？", 3),
    ("區財政局的「四比四看」活動比的是哪四項？", 4),           # traditional script
    ("重点抓了哪“三个方面宣传”？", 3),                         # a quote between 哪 and the count
    ("三组六项奖分别是哪六个奖？", 6),                         # the count after 哪, not the first one
    ("倡导成立了哪九个教师社团？", 9),
    ("通过哪些形式把党员身份亮出来？", None),                   # no count named
    ("会议是哪天召开的？", None),                               # not a list question
    ("哪一项措施最有效？", None),                               # one item is not a list
])
def test_the_count_a_list_question_asks_for(question, n):
    assert asked_count(question) == n


ORIG = (
    "八岔村簡介\n"
    "近年來,村黨支部走活了『三步棋』。一是休漁墾荒搞轉產。建綠色大豆生產基地,實現效益12萬元。"
    "二是以養代捕蓄資源。三是開發旅遊拓財源。\n"
    "村里成立了三陽、四海方舟、七星陣等社團。\n"
)
P1 = "近年來,村黨支部走活了『三步棋』。一是休漁墾荒搞轉產。建綠色大豆生產基地,實現效益12萬元。二是以養代捕蓄資源。三是開發旅遊拓財源。"
P2 = "村里成立了三陽、四海方舟、七星陣等社團。"


def _assistant(responses):
    chunks = _chunks_for("v", "八岔村簡介", ORIG, [(P1, P1.replace(",", "，")), (P2, P2)], {})
    c = Config()
    c.answer.refuse_threshold = 0.3
    llm = FakeChatModel(responses=responses, chunk_size=3)
    return Assistant(StandInKB(chunks, {"v": ORIG}), c, llm=llm), llm


def test_the_enumeration_with_the_asked_count_is_quoted_and_the_model_not_asked():
    # the fake model's answer swaps an item for the sentence that explains the first one
    a, llm = _assistant(["三步棋是休渔垦荒搞转产、建绿色大豆生产基地、实现效益12万元【1】。"])
    ans = a.answer("八岔村党支部走活的“三步棋”是哪三步？", llm_backend="fake")
    assert llm.calls == []
    assert not ans.refused and ans.grounded and ans.diagnostics["quoted_list"]
    for item in ("休渔垦荒搞转产", "以养代捕蓄资源", "开发旅游拓财源"):  # simplified question → simplified answer
        assert item in ans.text
    assert all(c.supported for c in ans.citations)


def test_a_quote_with_another_number_of_items_goes_to_the_model():
    a, llm = _assistant(["三步棋是休渔垦荒搞转产、以养代捕蓄资源、开发旅游拓财源【1】。"])
    ans = a.answer("八岔村党支部走活的“三步棋”是哪四步？", llm_backend="fake")
    assert len(llm.calls) == 1 and not ans.diagnostics["quoted_list"]


def test_an_inline_list_counts_its_items():
    p = Passage.from_hit(1, Hit(Chunk("v#1", "v", 1, "八岔村", (), P2, 0, len(P2)), 1.0, 1))
    assert quoted_list("村里成立了哪三个社团？", [p]) == P2 + "【1】"
    assert quoted_list("村里成立了哪五个社团？", [p]) is None


def test_english_list_questions_are_answered_by_the_model():
    a, llm = _assistant(["The three moves are fishing bans, aquaculture and tourism【1】."])
    a.answer("What are the three moves of the Bacha village branch?", llm_backend="fake")
    assert llm.calls  # the model writes the English answer (translation and answer calls)
