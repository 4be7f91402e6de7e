"""rag.answer.docfacts: "who wrote this / when was it published" answered from the document's own
date/source line (which the cleaner moves out of the chunks), quoted verbatim with its real span."""

from __future__ import annotations

import pytest

from _answer_kb import ORIG_A, ORIG_B, StandInKB
from rag.answer.assistant import Assistant
from rag.answer.docfacts import HEADER_SECTION, asked_facts, fact_passages
from rag.config import Config
from rag.llm.backends import FakeChatModel
from rag.types import Chunk, Hit, Passage


@pytest.mark.parametrize("question, facts", [
    ("这篇报道的作者是谁？", ["author"]),
    ("這篇報道的記者是誰？", ["author"]),                      # traditional script
    ("本文是哪天发布的？", ["date"]),
    ("该文章发表于什么时候？", ["date"]),                      # the verb before the time word
    ("这篇新闻的来源是哪家媒体？", ["source_name"]),
    ("Who is the author of this article?", ["author"]),
    ("When was this report published?", ["date"]),
    ("会议是什么时候召开的？", []),                           # an event in the document, not the document
    ("党支部书记是谁？", []),
    ("记者节是哪一天？", []),                                 # no reference to the document itself
])
def test_which_document_fact_a_question_asks(question, facts):
    assert asked_facts(question) == facts


def _passage(n: int, doc: str, text: str) -> Passage:
    c = Chunk(f"{doc}#0", doc, 0, "标题", ("正文",), text, 0, len(text), metadata={})
    return Passage.from_hit(n, Hit(c, 1.0, n))


def test_the_header_passage_is_the_original_line_with_its_real_span():
    ps = [_passage(1, "b", "局内设8个股室。")]
    out = fact_passages("这篇文章是什么时候发布的？", ps, lambda c: ORIG_B)
    assert len(out) == 2 and out[0] is ps[0]  # retrieved passages keep their numbers
    head = out[1]
    assert head.n == 2 and head.chunk.chunk_id == "b#header" and head.chunk.section == (HEADER_SECTION,)
    assert head.text == "时间:2010-06-28"
    assert ORIG_B[head.chunk.start:head.chunk.end] == head.text


def test_no_header_passage_without_the_fact_or_the_original_text():
    ps = [_passage(1, "b", "局内设8个股室。")]
    assert fact_passages("这篇文章的作者是谁？", ps, lambda c: ORIG_B) == ps  # ORIG_B names no author
    assert fact_passages("这篇文章是什么时候发布的？", ps, lambda c: None) == ps  # an index without texts
    assert fact_passages("局内设几个股室？", ps, lambda c: ORIG_B) == ps  # not a document fact


def _assistant(responses=None):
    c = Config()
    c.answer.refuse_threshold = 0.3
    llm = FakeChatModel(responses=responses, chunk_size=3) if responses is not None else None
    return Assistant(StandInKB(), c, llm=llm)


def test_a_model_citing_the_header_gets_a_checked_citation_quoting_the_original():
    a = _assistant([])
    passages = a.retrieve("這篇安達簡報是什麼時候發布的？", k=None, mode=None, backend="fake")
    n = next(p.n for p in passages if p.chunk.chunk_id == "a#header")
    a = _assistant([f"这篇简报发布于2010-11-26【{n}】。"])
    ans = a.answer("這篇安達簡報是什麼時候發布的？", llm_backend="fake")
    assert not ans.refused and ans.grounded
    (cit,) = [c for c in ans.citations if c.supported]
    assert cit.chunk_id == "a#header"
    assert cit.quote == "2010-11-26 來源:東北網" == ORIG_A[cit.quote_start:cit.quote_end]  # verbatim, real span


def test_the_extractive_backend_answers_a_date_question_from_the_header():
    ans = _assistant().answer("这篇甘肃煤田地质局的文章是什么时候发布的？", llm_backend="extractive")
    assert not ans.refused and "2010-06-28" in ans.text
    assert any(c.supported and c.chunk_id == "b#header" for c in ans.citations)
