"""Report rendering (golden files) and `rag report` questions-file parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _answer_kb import StandInKB
from rag.answer import Assistant
from rag.commands.report import read_questions
from rag.config import Config
from rag.errors import RagError
from rag.llm import FakeChatModel
from rag.report import render_docx, render_html, render_markdown, write_report

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
