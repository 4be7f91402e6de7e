"""Report rendering (golden files) and `rag report` questions-file parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _answer_kb import StandInKB
from rag.answer.assistant import Assistant
from rag.apps.commands.report import read_questions
from rag.config import Config
from rag.errors import RagError
from rag.llm.backends import FakeChatModel
from rag.cite.report import render_docx, render_html, render_markdown, write_report

GOLDEN = Path(__file__).parent / "golden"


def answers():
    """Three fixed answers through the real pipeline (fake model, stand-in KB), timings zeroed:
    1. two statements citing two passages, 2. one passage sentence cited again (deduplicated)
    plus an unsupported citation (never listed), 3. a refusal (closest passages listed)."""
    c = Config()
    c.answer.refuse_threshold = 0.3
    llm = FakeChatModel(
        responses=[
            "现有干部职工68人，其中党员32人【1】。党员参加“四比四看”活动【1】。",
            "其中党员32人【1】。局长是张三【2】。",
        ],
        cycle=False,
    )
    a = Assistant(StandInKB(), c, llm=llm)
    out = [
        a.answer("甘肃煤田地质局有多少干部职工和党员？", llm_backend="fake"),
        a.answer("甘肃煤田地质局有多少党员？", llm_backend="fake"),
        a.answer("火星探测器哪一年发射？", llm_backend="fake"),
    ]
    import dataclasses

    return [dataclasses.replace(x, timings={}) for x in out]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; rerun with UPDATE_GOLDEN=1 if intended"


def test_markdown_golden():
    md = render_markdown(answers())
    check_golden("report.md", md)


def test_markdown_structure():
    md = render_markdown(answers())
    # the same quoted sentence cited by answers 1 and 2 is one source: [^1] is reused
    assert md.count("[^1]:") == 1 and "[^1]" in md.split("## 2.")[1]
    assert "张三" in md and "[^3]" not in md  # unsupported citation: statement kept, no source
    assert "*局长是张三*（⚠未核实：张三）" in md  # ... and marked as unverified
    assert "根据现有资料无法回答该问题。" in md and "最接近的段落" in md
    # the quote is the original file's characters (ASCII comma and space kept)
    assert "“现有干部职工68 人,其中党员32 人。”" in md


def test_html_golden_and_escaping():
    html = render_html(answers())
    check_golden("report.html", html)
    assert html.count('<li id="src-') == 2 and "<script" not in html


def test_docx_roundtrip(tmp_path):
    from docx import Document

    p = render_docx(answers(), tmp_path / "r.docx")
    doc = Document(str(p))
    text = "\n".join(par.text for par in doc.paragraphs)
    assert "甘肃煤田地质局有多少干部职工和党员？" in text and "[1] 《甘肃煤田地质局》" in text
    sup = [r for par in doc.paragraphs for r in par.runs if r.font.superscript]
    assert [r.text for r in sup][:2] == ["[1]", "[2]"]


def test_write_report_by_suffix(tmp_path):
    a = answers()
    assert write_report(a, tmp_path / "x.md").read_text(encoding="utf-8").startswith("# 问答报告")
    assert "<!DOCTYPE html>" in write_report(a, tmp_path / "x.html").read_text(encoding="utf-8")
    with pytest.raises(RagError, match="format"):
        write_report(a, tmp_path / "x.pdf")


def test_read_questions_lines_and_jsonl(tmp_path):
    f = tmp_path / "q.txt"
    f.write_text("# 注释\n问题一？\n\n{\"question\": \"问题二？\"}\n{\"_id\": \"q3\", \"text\": \"问题三？\"}\n", encoding="utf-8")
    assert read_questions(f) == ["问题一？", "问题二？", "问题三？"]
    (tmp_path / "empty.txt").write_text("\n# 只有注释\n", encoding="utf-8")
    with pytest.raises(RagError, match="no questions"):
        read_questions(tmp_path / "empty.txt")
    (tmp_path / "bad.jsonl").write_text('{"question": \n', encoding="utf-8")
    with pytest.raises(RagError, match="not valid JSON"):
        read_questions(tmp_path / "bad.jsonl")
    with pytest.raises(RagError, match="not found"):
        read_questions(tmp_path / "missing.txt")


# ---------------------------------------------------------------- claims: verified vs unverified

from rag.types import Answer, Chunk, Citation, Claim, Hit  # noqa: E402

# "甲成立于1999年【1】。乙*成立*于<b>2003年。"
#  甲0 成1 立2 于3 1 4 9 5 9 6 9 7 年8 → verified claim [0, 9); 【1】 [9, 12); 。 12;
#  乙13 *14 成15 立16 *17 于18 <19 b20 >21 2 22 0 23 0 24 3 25 年26 → unverified claim [13, 27); 。 27
CLAIMS_TEXT = "甲成立于1999年【1】。乙*成立*于<b>2003年。"


def claims_answer(standalone: str = "") -> Answer:
    ch = Chunk("a#0", "a", 0, "甲志", ("沿革",), "甲在1999年成立。", 0, 10, "a.txt", {"date": "2020-01-02"})
    cit = Citation(1, ch.chunk_id, "a", "甲志", ("沿革",), "a.txt", 0, 10, "甲在1999年成立。", 0, 10, 0.9, True, "甲成立于1999年")
    claims = (Claim("甲成立于1999年", 0, 9, "verified", (1,)),
              Claim("乙*成立*于<b>2003年", 13, 27, "unverified", (), ("2003年",)))
    assert all(CLAIMS_TEXT[c.start : c.end] == c.text for c in claims)
    return Answer("那乙呢？" if standalone else "甲和乙哪年成立？", CLAIMS_TEXT, (cit,), False, (Hit(ch, 1.0, 1),), {}, "fake",
                  standalone_question=standalone, grounded=True, claims=claims)


def test_markdown_marks_unverified_statements():
    md = render_markdown([claims_answer()])
    # verified: its numbered source as before; unverified: italic, Markdown escaped, labelled, no source
    assert "甲成立于1999年[^1]。*乙\\*成立\\*于\\<b\\>2003年*（⚠未核实：2003年）。" in md
    assert md.count("[^1]") == 2 and "[^2]" not in md and "理解为" not in md


def test_html_marks_unverified_statements_with_the_chat_class():
    out = render_html([claims_answer()])
    assert '甲成立于1999年<sup><a href="#src-1" id="ref-1-1">[1]</a></sup>。' in out
    assert ('<span class="claim-unverified" title="未能在资料中核实：2003年">乙*成立*于&lt;b&gt;2003年'
            '<span class="claim-flag">未核实：2003年</span></span>。') in out
    assert "<b>" not in out and ".claim-unverified{" in out


def test_docx_unverified_run_is_italic_grey_and_labelled(tmp_path):
    from docx import Document

    doc = Document(str(render_docx([claims_answer()], tmp_path / "c.docx")))
    runs = {r.text: r for par in doc.paragraphs for r in par.runs}
    bad, note, good = runs["乙*成立*于<b>2003年"], runs["（未核实：2003年）"], runs["甲成立于1999年"]
    assert bad.italic and str(bad.font.color.rgb) == "808080" and str(note.font.color.rgb) == "808080"
    assert not good.italic and good.font.color.rgb is None and runs["[1]"].font.superscript


def test_understood_as_line_for_a_condensed_question(tmp_path):
    from docx import Document

    a = claims_answer(standalone="乙是哪一年成立的？")
    assert "## 1. 那乙呢？\n\n> 理解为：乙是哪一年成立的？\n\n甲成立于1999年" in render_markdown([a])
    assert '<p class="ans-understood">理解为：乙是哪一年成立的？</p>' in render_html([a])
    texts = [par.text for par in Document(str(render_docx([a], tmp_path / "u.docx"))).paragraphs]
    assert texts[texts.index("1. 那乙呢？") + 1] == "理解为：乙是哪一年成立的？"


def test_ask_checked_text_marks_unverified_statements():
    from rag.apps.commands.ask import checked_text

    assert checked_text(claims_answer()) == "甲成立于1999年【1】。乙*成立*于<b>2003年⚠未核实（资料中没有：2003年）。"
